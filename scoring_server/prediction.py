"""Calling the model: the one place where a model's own exception becomes a client answer."""
from __future__ import annotations

import traceback
from typing import Any

from flavors import LoadedModel

from .errors import BAD_REQUEST, ModelError

MODEL_ERROR_MESSAGE = (
    "Encountered an unexpected error while evaluating the model. Verify that the serialized input "
    "Dataframe is compatible with the model for inference."
)


def predict(model: LoadedModel, data: Any, params: dict | None) -> Any:
    """Run the model; any exception it raises is a 400 BAD_REQUEST carrying the traceback
    (sent to clients only when the server is configured to expose stack traces).

    It is logged where the request is answered (``error_handlers``), on the request's own thread
    and so with its ID: a batched prediction fails on the batching thread, which has no request."""
    try:
        return model.predict(data, params)
    except Exception as exc:  # the model's code may raise anything
        raise ModelError(MODEL_ERROR_MESSAGE, BAD_REQUEST, stack_trace=traceback.format_exc()) from exc
