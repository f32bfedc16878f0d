"""What config-service refuses, by name (each a problem+json status)."""

from __future__ import annotations

from chassis import ServiceError

__all__ = ["BadWebhook", "ClientUnauthenticated", "DecryptionFailed", "NotUtf8Text"]


class ClientUnauthenticated(ServiceError):
    """No credentials, or not those of a configured client: the client should send basic auth."""

    status = 401
    title = "Unauthorized"

    def __init__(self) -> None:
        super().__init__(
            "config-service needs HTTP basic credentials of a configured client",
            headers={"WWW-Authenticate": 'Basic realm="config-service"'},
        )


class NotUtf8Text(ServiceError):
    status = 400
    title = "Bad Request"


class DecryptionFailed(ServiceError):
    status = 400
    title = "Decryption failed"


class BadWebhook(ServiceError):
    """A /monitor body that is neither a push payload nor a form naming applications."""

    status = 400
    title = "Bad Request"
