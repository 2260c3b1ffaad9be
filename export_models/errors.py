"""The export's expected failures: each kind of bad input has its own type.

The CLI maps every ExportError to a one-line message and a non-zero exit (no traceback);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ExportError(Exception):
    """A problem with the user's input or environment, reported as one line."""

    def one_line(self) -> str:
        return " ".join(str(self).split())


class SourceNotFoundError(ExportError):
    """--source_model names a local path that does not exist."""


class HubUnavailableError(ExportError):
    """--source_model is a hub id that cannot be fetched (no network, offline mode, unknown or gated repo)."""


class InvalidSourceError(ExportError):
    """The source folder is not a Hugging Face model (no or unreadable config.json)."""


class UnsupportedArchitectureError(ExportError):
    """optimum-intel cannot export this architecture for the task."""


class RemoteCodeRequiredError(ExportError):
    """The model ships its own code (auto_map) and --trust_remote_code was not given."""


class NotASequenceClassifierError(ExportError):
    """`rerank` was given a model that is not a sequence classifier with one or two labels."""


class VersionExistsError(ExportError):
    """The version folder already exists and --overwrite_models was not given."""


class RepositoryNotWritableError(ExportError):
    """The model repository (or the folder of config.json) cannot be written."""


class InvalidRepositoryConfigError(ExportError):
    """The existing config.json cannot be read or is not shaped like a repository config."""


class InvalidOptionError(ExportError):
    """An option value that cannot work (model name, quantization parameters, pooling)."""


class AccuracyGateError(ExportError):
    """The quantized model is further from the fp32 model than --max_accuracy_drop allows."""


class ModelConversionError(ExportError):
    """optimum-cli failed to convert the model."""


class TokenizerConversionError(ExportError):
    """openvino-tokenizers cannot convert the tokenizer, or its framing cannot be derived."""


class ExportIOError(ExportError):
    """A file operation failed during the export (disk full, permissions changed under us, ...)."""


class ExportInterruptedError(ExportError):
    """SIGTERM or SIGINT stopped the export before its commit."""
