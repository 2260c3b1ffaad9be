"""`python -m serving` / `ovtext-serve`: serve a model repository over HTTP.

Flag names follow the reference server's docker run line (--config_path, --rest_port). Every flag
can also come from an environment variable, OVTEXT_<FLAG> (OVTEXT_REST_PORT, OVTEXT_CONFIG_PATH,
...); PORT and HOST are read too, as the FastAPI rerank services do. A flag wins over a variable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from serving.settings import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BODY_MEMORY, ServerSettings

ENV_PREFIX = "OVTEXT"
API_KEYS_ENV = "OVTEXT_API_KEYS"
GRACEFUL_SHUTDOWN_S = 30
# File descriptors kept for everything but client connections (model and log files, the listening
# socket, OpenVINO's own): --max_connections is lowered to the descriptor limit minus this.
RESERVED_DESCRIPTORS = 128


class KeyList(click.ParamType):  # type: ignore[type-arg]
    """--api_key's values: keys separated by commas only (OVTEXT_API_KEYS is not split on
    whitespace either), each checked against serving.http.access.KEY_RULE."""

    name = "keys"
    envvar_list_splitter = ","

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...]:
        from serving.http.access import key_problem

        keys = tuple(key for key in str(value).split(",") if key)
        for key in keys:
            problem = key_problem(key)
            if problem:
                # The key itself is a secret: never in the message.
                self.fail(f"an API key {problem}", param, ctx)
        return keys


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
    "--max_body_memory",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_BODY_MEMORY,
    help="Bytes of request bodies held at once, across all requests (being received or answered); a "
    "body that does not fit is refused with 429 before it is read. At least --max_body_bytes.",
)
@click.option(
    "--header_timeout",
    type=click.FloatRange(min=0.001),
    default=10.0,
    help="Seconds from a connection opening (or its last answer) to a request's complete headers; a "
    "client that sent part of one gets 408 and the connection closes, an idle one is closed.",
)
@click.option(
    "--body_timeout",
    type=click.FloatRange(min=0.001),
    default=60.0,
    help="Seconds from a request's headers to its complete body; a slower body gets 408 and the "
    "connection closes.",
)
@click.option(
    "--keep_alive_timeout",
    type=click.FloatRange(min=0.001),
    default=5.0,
    help="Seconds an idle connection stays open between requests.",
)
@click.option(
    "--max_connections",
    type=click.IntRange(min=1),
    default=2048,
    help="Open client connections; one more is answered 503 (JSON body, Retry-After) and closed. "
    f"Lowered to the open-file limit minus {RESERVED_DESCRIPTORS} when that is smaller.",
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
    type=KeyList(),
    multiple=True,
    callback=lambda _ctx, _param, values: tuple(key for keys in values for key in keys),
    help=f"Require `Authorization: Bearer <key>` on model routes (repeatable, or comma-separated; also "
    f"{API_KEYS_ENV}). A key is printable ASCII without spaces or commas. Keys given here show in the "
    f"process list: {API_KEYS_ENV} or --api_key_file keep them out of it. Without keys the server is open.",
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
    max_body_memory: int,
    header_timeout: float,
    body_timeout: float,
    keep_alive_timeout: float,
    max_connections: int,
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
        max_body_memory=max_body_memory,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        keep_alive_timeout=keep_alive_timeout,
        max_connections=_connection_cap(max_connections),
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
    if max_body_memory < max_body_bytes:
        raise click.BadParameter(
            f"{max_body_memory} is below --max_body_bytes {max_body_bytes}: no full-size body would fit",
            param_hint="--max_body_memory",
        )
    if settings.api_key_file is not None:
        _check_key_file(settings.api_key_file)
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


def _check_key_file(path: Path) -> None:
    from serving.http.access import read_key_file

    if not path.is_file():
        raise click.BadParameter(f"{path} does not exist", param_hint="--api_key_file")
    try:
        read_key_file(path)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise click.BadParameter(str(err), param_hint="--api_key_file") from err


def _connection_cap(requested: int) -> int:
    """--max_connections, lowered so client connections cannot take every file descriptor."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or requested <= soft - RESERVED_DESCRIPTORS:
        return requested
    cap = max(1, soft - RESERVED_DESCRIPTORS)
    logging.getLogger("serving").warning(
        "--max_connections %d lowered to %d: the open-file limit is %d", requested, cap, soft
    )
    return cap


def _plugin_config(value: str | None) -> dict[str, str]:
    """--plugin_config: a JSON object of OpenVINO properties, values as strings (as subconfig.json's)."""
    from serving.repository.config import parse_plugin_config

    try:
        return parse_plugin_config(value) if value else {}
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--plugin_config") from err


def serve(app: Any, settings: ServerSettings) -> None:
    """uvicorn until SIGTERM/SIGINT: in-flight requests finish (up to 30 s), new ones are refused.
    Connections have the header timeout and cap of serving/http/connections.py."""
    import uvicorn

    from serving.http.connections import ConnectionLimits, limited_protocol

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
        # uvicorn types it int, but hands it to loop.call_later, which takes a float.
        timeout_keep_alive=settings.keep_alive_timeout,  # type: ignore[arg-type]
        http=limited_protocol(ConnectionLimits(settings.header_timeout, settings.max_connections)),
    )
    DrainingServer(config).run()
