"""Server settings (the command-line flags and their environment variables), as one typed object."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_BODY_MEMORY = 256 * 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    config_path: Path
    host: str = "127.0.0.1"
    rest_port: int = 8000
    poll_interval: float = 1.0  # seconds between checks of config.json and the version folders
    max_documents: int = 1000  # documents per rerank request
    max_inputs: int = 2048  # inputs per embeddings request
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # bytes of request bodies held at once, across requests; a body that does not fit gets 429
    max_body_memory: int = DEFAULT_MAX_BODY_MEMORY
    header_timeout: float = 10.0  # seconds from connecting (or the last answer) to a request's full headers
    body_timeout: float = 60.0  # seconds from the headers to the full body
    keep_alive_timeout: float = 5.0  # seconds an idle connection stays open between requests
    max_connections: int = 2048  # open connections; more are answered 503 and closed
    batch_token_budget: int = 8192  # rows x padded length of one inference batch
    max_batch_size: int = 64
    max_concurrent_requests: int = 512  # model requests in progress; more get 429 at once
    request_timeout: float = 60.0  # seconds; a longer request gets 504 and its batches are cancelled
    max_request_tokens: int | None = None  # framed tokens of one request (after chunking)
    api_keys: tuple[str, ...] = ()  # keys given on the command line or in OVTEXT_API_KEYS
    api_key_file: Path | None = None  # one key a line; re-read when it changes
    protect_metrics: bool = False  # /metrics needs a key too
    log_level: str = "info"
    default_rerank_model: str | None = None  # answers rerank requests that name no model
    default_embeddings_model: str | None = None  # answers embeddings requests that name no model
    # OpenVINO properties merged over the plugin_config of every model compiled on CPU
    plugin_config: dict[str, str] = field(default_factory=dict)
    # Folders besides config.json's whose model files may be read (symlinks followed)
    allowed_model_roots: tuple[Path, ...] = ()
