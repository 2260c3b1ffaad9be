"""`python -m serving` / `ovtext-serve`: serve a model repository over HTTP.

Flag names follow the reference server's docker run line (--config_path, --rest_port).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import click

from serving.settings import DEFAULT_MAX_BODY_BYTES, ServerSettings


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option(
    "--config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="config.json of the model repository.",
)
@click.option("--rest_port", type=click.IntRange(0, 65535), default=8000, help="HTTP port.")
@click.option("--host", default="127.0.0.1", help="Address to bind; 0.0.0.0 for all interfaces.")
@click.option(
    "--port",
    "grpc_port",
    type=click.IntRange(0, 65535),
    default=None,
    help="The reference server's gRPC port: accepted so its command line works; there is no gRPC endpoint.",
)
@click.option(
    "--poll_interval",
    type=click.FloatRange(min=0.05),
    default=1.0,
    help="Seconds between checks of config.json and the version folders.",
)
@click.option(
    "--max_documents",
    type=click.IntRange(min=1),
    default=1000,
    help="Most documents per rerank request (inputs per embeddings request).",
)
@click.option(
    "--max_body_bytes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_BODY_BYTES,
    help="Largest request body accepted.",
)
@click.option(
    "--batch_token_budget",
    type=click.IntRange(min=1),
    default=8192,
    help="Most padded tokens (rows x length) in one inference batch.",
)
@click.option(
    "--max_batch_size", type=click.IntRange(min=1), default=64, help="Most rows in one inference batch."
)
@click.option("--log_level", type=click.Choice(["debug", "info", "warning", "error"]), default="info")
def main(
    config_path: Path,
    rest_port: int,
    host: str,
    grpc_port: int | None,
    poll_interval: float,
    max_documents: int,
    max_body_bytes: int,
    batch_token_budget: int,
    max_batch_size: int,
    log_level: str,
) -> None:
    """Serve the rerank and embeddings models listed in CONFIG_PATH (Cohere and OpenAI APIs)."""
    import uvicorn

    from serving.http.app import create_app
    from serving.pipelines.batching import BatchPolicy
    from serving.registry import ModelRegistry

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if grpc_port is not None:
        logging.getLogger("serving").warning(
            "--port %d ignored: this server answers REST only, on --rest_port %d", grpc_port, rest_port
        )
    settings = ServerSettings(
        config_path=config_path.resolve(),
        host=host,
        rest_port=rest_port,
        poll_interval=poll_interval,
        max_documents=max_documents,
        max_body_bytes=max_body_bytes,
        batch_token_budget=batch_token_budget,
        max_batch_size=max_batch_size,
        log_level=log_level,
    )
    if not settings.config_path.exists():
        raise click.BadParameter(f"{settings.config_path} does not exist", param_hint="--config_path")
    registry = ModelRegistry(
        settings.config_path,
        batching=BatchPolicy(token_budget=batch_token_budget, max_batch_size=max_batch_size),
        poll_interval=poll_interval,
    )
    app = create_app(registry, settings)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C after its clean shutdown
        uvicorn.run(app, host=host, port=rest_port, log_level=log_level, access_log=log_level == "debug")
    # OpenVINO's plugins can crash while the interpreter tears down its modules; the server
    # has shut down cleanly by now, so leave without that teardown.
    logging.shutdown()
    os._exit(0)
