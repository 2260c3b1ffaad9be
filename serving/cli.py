"""`python -m serving` / `ovtext-serve`: serve a model repository over HTTP.

Flag names follow the reference server's docker run line (--config_path, --rest_port). Every flag
can also come from an environment variable, OVTEXT_<FLAG> (OVTEXT_REST_PORT, OVTEXT_CONFIG_PATH,
...); PORT and HOST are read too, as the FastAPI rerank services do. A flag wins over a variable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import click

from serving.settings import DEFAULT_MAX_BODY_BYTES, ServerSettings

ENV_PREFIX = "OVTEXT"
API_KEYS_ENV = "OVTEXT_API_KEYS"
GRACEFUL_SHUTDOWN_S = 30


@click.command(
    context_settings={
        "help_option_names": ["-h", "--help"],
        "show_default": True,
        "auto_envvar_prefix": ENV_PREFIX,
    }
)
@click.option(
    "--config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="config.json of the model repository.",
)
@click.option(
    "--rest_port",
    type=click.IntRange(0, 65535),
    default=8000,
    envvar=["OVTEXT_REST_PORT", "PORT"],
    show_envvar=True,
    help="HTTP port.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    envvar=["OVTEXT_HOST", "HOST"],
    show_envvar=True,
    help="Address to bind; 0.0.0.0 for all interfaces.",
)
@click.option(
    "--port",
    "grpc_port",
    type=click.IntRange(0, 65535),
    default=None,
    envvar="OVTEXT_GRPC_PORT",
    help="The reference server's gRPC port: accepted so its command line works; there is no gRPC endpoint.",
)
@click.option(
    "--poll_interval",
    type=click.FloatRange(min=0.05),
    default=1.0,
    help="Seconds between checks of config.json and the version folders.",
)
@click.option(
    "--max_documents", type=click.IntRange(min=1), default=1000, help="Most documents per rerank request."
)
@click.option(
    "--max_inputs", type=click.IntRange(min=1), default=2048, help="Most inputs per embeddings request."
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
@click.option(
    "--cross_request_batching/--no_cross_request_batching",
    default=True,
    help="Let concurrent requests share inference batches (off: each batch holds one request's rows).",
)
@click.option(
    "--max_concurrent_requests",
    type=click.IntRange(min=1),
    default=512,
    help="Model requests in progress at once; more are refused at once with 429 and Retry-After.",
)
@click.option(
    "--request_timeout",
    type=click.FloatRange(min=0.001),
    default=60.0,
    help="Seconds a request may take; a longer one gets 504 and its remaining batches are cancelled.",
)
@click.option(
    "--max_request_tokens",
    type=click.IntRange(min=1),
    default=None,
    help="Most tokens one request may feed the model (after chunking; specials included). Default: no limit.",
)
@click.option(
    "--api_key",
    "api_keys",
    multiple=True,
    callback=lambda _ctx, _param, values: tuple(
        key for value in values for key in re.split(r"[,\s]+", value) if key
    ),
    help=f"Require `Authorization: Bearer <key>` on model routes (repeatable; also {API_KEYS_ENV}, "
    "comma-separated). Without keys the server is open.",
)
@click.option(
    "--api_key_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="File of API keys, one a line (# comments); re-read when it changes.",
)
@click.option("--protect_metrics", is_flag=True, help="With API keys, /metrics needs a key too.")
@click.option(
    "--default_rerank_model",
    default=None,
    help="The reranker (name or alias) that answers requests naming no model. Default: the one reranker "
    "served; with several, requests must name one.",
)
@click.option(
    "--default_embeddings_model",
    default=None,
    help="The embedder (name or alias) that answers requests naming no model (as --default_rerank_model).",
)
@click.option(
    "--allowed_model_root",
    "allowed_model_roots",
    type=click.Path(path_type=Path, file_okay=False),
    multiple=True,
    help="A folder outside config.json's own whose model files may be served (repeatable; "
    f"{ENV_PREFIX}_ALLOWED_MODEL_ROOT, space-separated). Every file read for a model must resolve, "
    "symlinks followed, inside config.json's folder or one of these.",
)
@click.option("--log_level", type=click.Choice(["debug", "info", "warning", "error"]), default="info")
@click.option(
    "--plugin_config",
    default=None,
    callback=lambda _ctx, _param, value: _plugin_config(value),
    help="OpenVINO properties (a JSON object) merged over the plugin_config of every model on CPU, e.g. "
    '\'{"INFERENCE_NUM_THREADS": "4", "NUM_STREAMS": "2"}\' (threads tied to a container\'s CPU limit).',
)
def main(
    config_path: Path,
    rest_port: int,
    host: str,
    grpc_port: int | None,
    poll_interval: float,
    max_documents: int,
    max_inputs: int,
    max_body_bytes: int,
    batch_token_budget: int,
    max_batch_size: int,
    cross_request_batching: bool,
    max_concurrent_requests: int,
    request_timeout: float,
    max_request_tokens: int | None,
    api_keys: tuple[str, ...],
    api_key_file: Path | None,
    protect_metrics: bool,
    default_rerank_model: str | None,
    default_embeddings_model: str | None,
    log_level: str,
    plugin_config: dict[str, str],
    allowed_model_roots: tuple[Path, ...],
) -> None:
    """Serve the rerank and embeddings models listed in CONFIG_PATH (Cohere and OpenAI APIs)."""
    from serving.http.app import create_app
    from serving.pipelines.batching import BatchPolicy
    from serving.pipelines.run import RequestLimits
    from serving.registry import ModelRegistry

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if grpc_port is not None:
        logging.getLogger("serving").warning(
            "--port %d ignored: this server answers REST only, on --rest_port %d", grpc_port, rest_port
        )
    settings = ServerSettings(
        # Symlinks kept: a ConfigMap's config.json is a link into the `..data` folder beside it.
        config_path=Path(os.path.abspath(config_path)),
        host=host,
        rest_port=rest_port,
        poll_interval=poll_interval,
        max_documents=max_documents,
        max_inputs=max_inputs,
        max_body_bytes=max_body_bytes,
        batch_token_budget=batch_token_budget,
        max_batch_size=max_batch_size,
        max_concurrent_requests=max_concurrent_requests,
        request_timeout=request_timeout,
        max_request_tokens=max_request_tokens,
        api_keys=api_keys,
        api_key_file=api_key_file.resolve() if api_key_file else None,
        protect_metrics=protect_metrics,
        log_level=log_level,
        default_rerank_model=default_rerank_model,
        default_embeddings_model=default_embeddings_model,
        plugin_config=plugin_config,
        allowed_model_roots=tuple(Path(os.path.abspath(root)) for root in allowed_model_roots),
    )
    if not settings.config_path.exists():
        raise click.BadParameter(f"{settings.config_path} does not exist", param_hint="--config_path")
    if settings.api_key_file is not None and not settings.api_key_file.is_file():
        raise click.BadParameter(f"{settings.api_key_file} does not exist", param_hint="--api_key_file")
    registry = ModelRegistry(
        settings.config_path,
        batching=BatchPolicy(
            token_budget=batch_token_budget,
            max_batch_size=max_batch_size,
            cross_request=cross_request_batching,
        ),
        limits=RequestLimits(max_request_tokens=max_request_tokens),
        poll_interval=poll_interval,
        cpu_plugin_config=plugin_config,
        allowed_model_roots=settings.allowed_model_roots,
    )
    app = create_app(registry, settings)
    serve(app, settings)
    # OpenVINO's plugins can crash while the interpreter tears down its modules; the server
    # has shut down cleanly by now, so leave without that teardown.
    logging.shutdown()
    os._exit(0)


def _plugin_config(value: str | None) -> dict[str, str]:
    """--plugin_config: a JSON object of OpenVINO properties, values as strings (as subconfig.json's)."""
    from serving.repository.config import parse_plugin_config

    try:
        return parse_plugin_config(value) if value else {}
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--plugin_config") from err


def serve(app: object, settings: ServerSettings) -> None:
    """uvicorn until SIGTERM/SIGINT: in-flight requests finish (up to 30 s), new ones are refused."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                try:
                    yield
                finally:
                    # uvicorn would re-raise the signal after its clean shutdown (exit code -15);
                    # the drain is done, so the process exits 0 instead.
                    self._captured_signals.clear()

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.rest_port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    DrainingServer(config).run()
