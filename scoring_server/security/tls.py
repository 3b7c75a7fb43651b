"""The server's TLS context, for every socket it answers on itself (besides gunicorn's workers,
which read ``certfile``/``keyfile`` through gunicorn): the metrics port and the port while the model
loads."""
from __future__ import annotations

import ssl

from ..config import ServerConfig


def server_tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    """A server-side context with the configured certificate; None without ``certfile`` (plain HTTP)."""
    if not config.certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.certfile, config.keyfile)
    return context
