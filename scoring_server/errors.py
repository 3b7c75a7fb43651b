"""The one exception type of the request path, and its JSON rendering.

Code anywhere on the path raises :class:`ScoringError` where it finds a problem; the app
turns it into ``{"error_code": ..., "message": ...}`` with the right HTTP status, in one place.
The ``error_code`` values are MLflow's, so clients written for MLflow keep working.
"""
from __future__ import annotations

BAD_REQUEST = "BAD_REQUEST"
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
INTERNAL_ERROR = "INTERNAL_ERROR"
#: No API key, or one the server does not know (HTTP 401).
UNAUTHENTICATED = "UNAUTHENTICATED"
#: A valid API key without the scope the route needs (HTTP 403).
PERMISSION_DENIED = "PERMISSION_DENIED"


class ScoringError(Exception):
    """A request that cannot be scored, with the MLflow error code and HTTP status to answer."""

    def __init__(self, message: str, error_code: str = BAD_REQUEST, status: int = 400,
                 stack_trace: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.status = status
        self.stack_trace = stack_trace

    def answered_as(self, error_code: str) -> ScoringError:
        """The same error under another protocol's ``error_code`` (this one is left as it is)."""
        if error_code == self.error_code:
            return self
        answered = type(self)(self.message, error_code, self.status, self.stack_trace)
        answered.__cause__ = self.__cause__
        return answered

    def one_line(self) -> str:
        """The error code and message, and the model's own exception behind it (which the server keeps
        for its stack trace): what a batch job or a Spark driver, which get no stack trace, report."""
        cause = self.__cause__
        text = str(cause).strip()
        reason = f" ({type(cause).__name__}: {text.splitlines()[0] if text else ''})" if cause is not None else ""
        return f"{self.error_code}: {self.message}{reason}"

    def to_dict(self, include_stack_trace: bool = False, request_id: str | None = None) -> dict:
        """The JSON body, with the request's ID when given (MLflow's clients ignore keys they do not
        know); the server-side stack trace only when asked for."""
        body = {"error_code": self.error_code, "message": self.message}
        if request_id is not None:
            body["request_id"] = request_id
        if include_stack_trace and self.stack_trace:
            body["stack_trace"] = self.stack_trace
        return body


class ModelError(ScoringError):
    """The model raised (its exception is the ``__cause__``): logged with its traceback when answered."""


def invalid_input(message: str) -> ScoringError:
    """A body that does not decode into model input (MLflow's ``MlflowInvalidInputException``)."""
    return ScoringError(f"Invalid input. {message}", BAD_REQUEST)


def invalid_parameter(message: str) -> ScoringError:
    """Input that decodes but does not satisfy the model's signature or params."""
    return ScoringError(message, INVALID_PARAMETER_VALUE)


def unsupported_media_type(message: str) -> ScoringError:
    """A Content-Type the server does not read (HTTP 415)."""
    return ScoringError(message, BAD_REQUEST, status=415)
