"""The Spring Cloud Config Environment API over a Git (or plain folder) repository."""
