"""The errors a request can end in, one type per kind; serving/http/errors.py maps them to HTTP.

They live at the bottom of the package (no imports) so the pipelines and the registry raise
them without reaching up into the web layer.
"""

from __future__ import annotations


class ServingError(Exception):
    """Base of the errors a client sees as {"error": message}."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidRequest(ServingError):
    """The body is not what the endpoint takes (bad JSON, a wrong type, a missing or empty field)."""


class EmptyInput(InvalidRequest):
    """A required list or text is empty (TEI reports it apart from other invalid requests)."""


class ModelNotFound(ServingError):
    """No model of that name is configured."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="model")


class ModelUnavailable(ServingError):
    """The model is configured but no version of it is loaded (still loading, or it failed to load)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="model")


class TooManyDocuments(ServingError):
    """More documents or inputs than the server accepts in one request."""


class TooManyChunks(ServingError):
    """Long documents split into more chunks than the graph's max_allowed_chunks."""


class InputTooLong(ServingError):
    """A text has more tokens than the model takes (and truncation is off), or the query leaves no room."""


class TooManyTokens(ServingError):
    """The request needs more tokens (after chunking) than --max_request_tokens."""


class BodyTooLarge(ServingError):
    """The request body is over the server's size limit."""


class ReloadFailed(ServingError):
    """POST /v1/config/reload could not read config.json; what was serving keeps serving."""


class Unauthorized(ServingError):
    """API keys are configured and the request has no valid `Authorization: Bearer <key>`."""


class Overloaded(ServingError):
    """More requests in progress than --max_concurrent_requests: retry later."""


class RequestBodyTimedOut(ServingError):
    """The request body did not arrive in full within --body_timeout (a stalled or trickling client)."""


class RequestTimedOut(ServingError):
    """The request ran longer than --request_timeout; its remaining batches were cancelled."""


class ModelFailure(ServingError):
    """The model itself failed on a valid request (an inference error, non-finite output)."""
