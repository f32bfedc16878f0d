"""Root conftest: the shared fixtures (real Redis, Zipkin, the local topology) for every test."""

pytest_plugins = ["msa_testing.fixtures"]
