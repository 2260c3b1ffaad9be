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


class BodyTooLarge(ServingError):
    """The request body is over the server's size limit."""


class ReloadFailed(ServingError):
    """POST /v1/config/reload could not read config.json; what was serving keeps serving."""


class NonFiniteOutput(ServingError):
    """The model gave NaN or infinity: a fault of the model or the server, never sent as a result."""
