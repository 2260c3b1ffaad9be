"""Server settings (the command-line flags), as one typed object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    config_path: Path
    host: str = "127.0.0.1"
    rest_port: int = 8000
    poll_interval: float = 1.0  # seconds between checks of config.json and the version folders
    max_documents: int = 1000  # documents per rerank request, inputs per embeddings request
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    batch_token_budget: int = 8192  # rows x padded length of one inference batch
    max_batch_size: int = 64
    log_level: str = "info"
