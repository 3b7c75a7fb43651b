"""``GET /openapi.json``: the OpenAPI 3.1 document of the running server, its ``/invocations``
request schemas generated from the served model's signature."""
from __future__ import annotations

from .document import openapi_document

__all__ = ["openapi_document"]
