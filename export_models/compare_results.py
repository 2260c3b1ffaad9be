"""Parity check: score the same texts with the Hugging Face model and with the running server.

    python export_models/compare_results.py --query "hello" --document "welcome" --document "farewell"
    python export_models/compare_results.py --input "hello" --input "farewell"

Prints what the reference OVMS demo prints ("Comparison with Hugging Faces"), then the largest
difference and PASS or FAIL against the tolerance. Exit codes: 0 PASS, 1 FAIL, 2 the check could
not run (server down, model not served, reference model not loadable, bad options).

The reference defaults to the model the served version was exported from: export records it in
the IR's runtime info (ModelInfo.source_model), which this tool reads from the repository that
--config_path points to (the same config.json the server was started with).
"""

from __future__ import annotations

import base64
import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import httpx
import numpy as np

# Runs as `python export_models/compare_results.py` too (the command the reference demo documents):
# then the repository root is not on sys.path yet.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from export_models.hf_reference import (
    HFEmbeddingReference,
    HFRerankReference,
    post_pool_torch,
    quiet_transformers,
)
from serving.repository.config import (
    ConfigError,
    EmbeddingsOptions,
    GraphEntry,
    ServableSpec,
    read_config,
    read_servable_spec,
    resolve_options,
)
from serving.repository.families import family_by_name
from serving.repository.layout import (
    CONFIG_FILE,
    ModelInfo,
    Pooling,
    Task,
    TokenizerInfo,
    read_model_info,
    read_tokenizer_info,
)
from serving.repository.versions import version_to_run

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_ERROR = 2

# Default tolerances by the export's weight format. Rerank: largest |score difference| (sigmoid
# scores in [0, 1]). Embeddings: largest cosine distance (1 - cosine similarity).
# fp32 exports pin f32 inference, so they match to float rounding (the server issue promises 1e-3
# and 1e-4); fp16 and int8 run at the plugin's default precision (bf16 on CPUs that have it) and
# int8 also quantizes the weights, so they are only expected to be close.
RERANK_TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2, "int8": 5e-2}
EMBEDDINGS_TOLERANCE = {"fp32": 1e-4, "fp16": 2e-3, "int8": 1e-2}
HTTP_TIMEOUT_S = 600.0


class CompareError(Exception):
    """The check cannot run; the message says why and what to do (printed as one line, exit 2)."""


# --------------------------------------------------------------------------------------------
# The repository: what was exported (shared with the benchmark, which measures the same IRs)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportedModel:
    """One model of a repository at one version, read the way the server reads it."""

    name: str
    spec: ServableSpec  # task, graph options, tokenizer and model entries of subconfig.json
    version: int
    tokenizer_xml: Path
    model_xml: Path
    model_info: ModelInfo
    tokenizer_info: TokenizerInfo

    @property
    def task(self) -> Task:
        return self.spec.task

    @property
    def embeddings_options(self) -> EmbeddingsOptions:
        """The settings the server applies: the graph's, else the export's runtime info."""
        options = resolve_options(self.task, self.spec.options, self.model_info)
        return options if isinstance(options, EmbeddingsOptions) else EmbeddingsOptions()


def list_repository_models(config_path: Path) -> dict[str, GraphEntry]:
    """Model name -> graph entry, for every entry of config.json."""
    try:
        return {entry.name: entry for entry in read_config(config_path)}
    except ConfigError as exc:
        raise CompareError(f"cannot read the repository: {exc}") from exc


def read_exported_model(config_path: Path, model_name: str, version: int | None = None) -> ExportedModel:
    """What export wrote for one model: task, graph and plugin settings, and the IRs' runtime info.

    version: the one to read; by default the highest the model's version policy serves.
    """
    import openvino as ov
    import openvino_tokenizers  # noqa: F401  (registers the tokenizer IR's operations)

    entries = list_repository_models(config_path)
    if model_name not in entries:
        found = ", ".join(entries) or "none"
        raise CompareError(f"model '{model_name}' is not in {config_path} (it has: {found})")
    try:
        spec = read_servable_spec(entries[model_name])
    except ConfigError as exc:
        raise CompareError(f"cannot read model '{model_name}': {exc}") from exc
    versions = spec.scan_versions()
    chosen = version_to_run(spec.model.version_policy, versions.keys(), version)
    if chosen is None and version is None:
        raise CompareError(f"{entries[model_name].base_path} has no complete version to serve")
    if chosen is None:
        raise CompareError(f"{entries[model_name].base_path} has no complete version {version}")
    files = versions[chosen]
    core = ov.Core()
    try:
        tokenizer_info = read_tokenizer_info(core.read_model(files.tokenizer_xml))
        model_info = read_model_info(core.read_model(files.model_xml))
    except (KeyError, RuntimeError) as exc:
        lines = str(exc).splitlines()
        reason = " ".join(line for line in lines if line.strip() and not line.startswith("Exception from"))
        reason = reason or exc.__class__.__name__
        raise CompareError(f"cannot read the export's runtime info of '{model_name}': {reason}") from exc
    return ExportedModel(
        name=model_name,
        spec=spec,
        version=chosen,
        tokenizer_xml=files.tokenizer_xml,
        model_xml=files.model_xml,
        model_info=model_info,
        tokenizer_info=tokenizer_info,
    )


# --------------------------------------------------------------------------------------------
# The server side
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timed:
    """Per-item results of one call and how long the call took."""

    values: np.ndarray  # scores [n] in document order, or embeddings [n, dim] in input order
    duration_ms: float


def _server_error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text.strip()[:300]


class ServerClient:
    """The running server's Cohere-style /rerank and OpenAI-style /embeddings, under base_url."""

    def __init__(self, base_url: str, timeout_s: float = HTTP_TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise CompareError(
                f"cannot reach the server at {self.base_url} ({exc.__class__.__name__}: {exc}); "
                "start it (make serve, or python -m serving --config_path models/config.json "
                "--rest_port 8000) or pass --base_url"
            ) from exc

    def served_models(self) -> dict[str, str | None]:
        """Served model name -> its task, when the model list says (this server's lists do)."""
        response = self._request("GET", f"{self.base_url}/models")
        if response.status_code != 200:
            raise CompareError(
                f"GET {self.base_url}/models answered {response.status_code}: "
                "is --base_url the server's /v3 root?"
            )
        return {item["id"]: item.get("task") for item in response.json().get("data", [])}

    def served_versions(self, model_name: str) -> list[int]:
        """The versions the server reports as AVAILABLE in GET /v1/config (empty when it does not say)."""
        parts = urlsplit(self.base_url)
        try:
            response = self._http.get(f"{parts.scheme}://{parts.netloc}/v1/config")
            status = response.json().get(model_name, {}).get("model_version_status", [])
            return sorted(int(item["version"]) for item in status if item.get("state") == "AVAILABLE")
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            return []

    def _post(self, route: str, body: dict[str, Any]) -> tuple[Any, float]:
        """The answer's JSON and how long the call took in ms; a refusal is a CompareError."""
        start = time.perf_counter()
        response = self._request("POST", f"{self.base_url}/{route}", json=body)
        duration_ms = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise CompareError(
                f"the server refused the {route} request ({response.status_code}): {_server_error(response)}"
            )
        return response.json(), duration_ms

    def rerank(
        self, model_name: str, query: str, documents: Sequence[str], instruction: str | None = None
    ) -> Timed:
        body: dict[str, Any] = {"model": model_name, "query": query, "documents": list(documents)}
        if instruction is not None:
            body["instruction"] = instruction
        answer, duration_ms = self._post("rerank", body)
        scores = np.zeros(len(documents), dtype=np.float32)
        for result in answer["results"]:
            scores[result["index"]] = result["relevance_score"]
        return Timed(scores, duration_ms)

    def embed(self, model_name: str, inputs: Sequence[str], prompt_name: str | None = None) -> Timed:
        # base64 is what the OpenAI SDK asks for by default: little-endian float32.
        body: dict[str, Any] = {"model": model_name, "input": list(inputs), "encoding_format": "base64"}
        if prompt_name is not None:
            body["prompt_name"] = prompt_name
        answer, duration_ms = self._post("embeddings", body)
        data = sorted(answer["data"], key=lambda item: item["index"])
        vectors = [np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") for item in data]
        return Timed(np.stack(vectors), duration_ms)


# --------------------------------------------------------------------------------------------
# The Hugging Face side
# --------------------------------------------------------------------------------------------


def check_reference_path(hf_model: str) -> None:
    """A reference given as a path must exist (else transformers calls it a malformed hub id)."""
    looks_like_path = hf_model.startswith(("/", "./", "../", "~")) or hf_model.count("/") > 1
    if looks_like_path and not Path(hf_model).expanduser().is_dir():
        raise CompareError(f"cannot load the reference model '{hf_model}': no such folder")


def _load_error(hf_model: str, exc: Exception) -> CompareError:
    first_line = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
    hint = (
        ""
        if Path(hf_model).is_dir()
        else " (a hub id needs network access or the HF cache; or pass a local folder)"
    )
    return CompareError(f"cannot load the reference model '{hf_model}'{hint}: {first_line}")


@contextlib.contextmanager
def _loading_reference(hf_model: str) -> Iterator[None]:
    """Report any failure to load the reference model the same way (a CompareError, exit 2)."""
    try:
        yield
    except CompareError:
        raise
    except Exception as exc:
        raise _load_error(hf_model, exc) from exc


def _timed(compute: Callable[[], np.ndarray]) -> Timed:
    start = time.perf_counter()
    values = compute()
    return Timed(np.asarray(values, dtype=np.float32), (time.perf_counter() - start) * 1000)


def is_sentence_transformers_model(hf_model: str) -> bool:
    """Whether the model prescribes its pooling with a sentence-transformers modules.json."""
    if Path(hf_model).is_dir():
        return (Path(hf_model) / "modules.json").is_file()
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        hf_hub_download(hf_model, "modules.json")
    except EntryNotFoundError:
        return False
    except Exception as exc:
        raise _load_error(hf_model, exc) from exc
    return True


class HFEmbedder:
    """The model's own embedding: sentence-transformers when the model has its config (pooling and
    normalization as it prescribes), else transformers with the pooling recorded at export; then the
    family's post-pooling steps (nomic-embed-text-v1.5: layer norm, then L2), as its model card does."""

    def __init__(
        self,
        hf_model: str,
        max_length: int | None,
        pooling: Pooling,
        normalize: bool,
        post_pooling: Sequence[str] = (),
        prompts: dict[str, str] | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        self.sentence_model: Any = None
        self.transformers_model: HFEmbeddingReference | None = None
        self.post_pooling = tuple(post_pooling)
        self.normalize = normalize
        self.prompts = prompts or {}
        if is_sentence_transformers_model(hf_model):
            from sentence_transformers import SentenceTransformer

            with quiet_transformers():
                self.sentence_model = SentenceTransformer(
                    hf_model, device="cpu", trust_remote_code=trust_remote_code
                )
            if max_length:
                self.sentence_model.max_seq_length = max_length
            self.description = "sentence-transformers"
        else:
            self.transformers_model = HFEmbeddingReference(
                hf_model, max_length, pooling, normalize, post_pooling, trust_remote_code
            )
            self.description = f"transformers, {pooling.value} pooling{', normalized' if normalize else ''}"
        if self.post_pooling:
            self.description += f", then {' and '.join(self.post_pooling)}"

    def embed(self, inputs: Sequence[str], prompt_name: str | None = None) -> np.ndarray:
        prompt = self.prompts.get(prompt_name, "") if prompt_name else ""
        if self.transformers_model is not None:
            return self.transformers_model.embed(inputs, prompt=prompt)
        import torch

        encoded = self.sentence_model.encode(list(inputs), prompt=prompt, convert_to_tensor=True)
        if self.post_pooling:
            encoded = post_pool_torch(encoded.float(), self.post_pooling)
            if self.normalize:
                encoded = torch.nn.functional.normalize(encoded, p=2, dim=1)
        return encoded.cpu().numpy().astype(np.float32)


# --------------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The served model to check and what is known about its export."""

    model_name: str
    task: Task
    exported: ExportedModel | None


def _choose_model(
    client: ServerClient, task: Task, model_name: str | None, config_path: Path | None
) -> Target:
    served = client.served_models()
    if model_name is not None and model_name not in served:
        raise CompareError(
            f"model '{model_name}' is not served at {client.base_url} (served: {', '.join(served) or 'none'})"
        )
    repository = list_repository_models(config_path) if config_path else {}
    if model_name is None:
        # The served models of the wanted task, as the model list or else the repository tells.
        def task_of(name: str) -> Task | None:
            if served[name] in {t.value for t in Task}:
                return Task(served[name])
            return _task_of(repository[name]) if name in repository else None

        candidates = [name for name in served if task_of(name) is task]
        if not candidates and not repository and all(value is None for value in served.values()):
            candidates = list(served)  # nothing tells the tasks: only a single served model is unambiguous
        if len(candidates) != 1:
            found = ", ".join(candidates) or "none"
            raise CompareError(
                f"cannot tell which {task.value} model to check (candidates: {found}): pass --model_name"
            )
        model_name = candidates[0]
    exported = None
    if config_path and model_name in repository:
        versions = client.served_versions(model_name)
        exported = read_exported_model(config_path, model_name, versions[-1] if versions else None)
        if exported.task is not task:
            raise CompareError(
                f"model '{model_name}' is a {exported.task.value} model, not a {task.value} model"
            )
    return Target(model_name, task, exported)


def _task_of(entry: GraphEntry) -> Task | None:
    try:
        return read_servable_spec(entry).task
    except ConfigError:
        return None


def _verdict(largest: float, tolerance: float, what: str) -> int:
    passed = largest <= tolerance
    print(f"{what}: {largest:.6g} (tolerance {tolerance:g})")
    print("PASS" if passed else "FAIL")
    return EXIT_PASS if passed else EXIT_FAIL


def _default_tolerance(table: dict[str, float], target: Target) -> float:
    weight_format = target.exported.model_info.weight_format if target.exported else "fp32"
    return table.get(weight_format, table["int8"])


def compare_rerank(
    client: ServerClient,
    target: Target,
    hf_model: str,
    query: str,
    documents: Sequence[str],
    max_length: int | None,
    tolerance: float | None,
    instruction: str | None = None,
    trust_remote_code: bool = False,
) -> int:
    exported = target.exported
    max_length = max_length or (exported.tokenizer_info.max_length if exported else None)
    family = family_by_name(exported.model_info.family) if exported else None
    if instruction is None and exported is not None and exported.tokenizer_info.takes_instruction:
        instruction = exported.tokenizer_info.default_instruction  # the export's default, maybe --instruction
    with _loading_reference(hf_model):
        reference = HFRerankReference(hf_model, max_length, family, trust_remote_code)
    reference.scores(query, documents[:1], instruction=instruction)  # warm-up: the first torch call
    client.rerank(target.model_name, query, documents[:1], instruction)
    hf = _timed(lambda: reference.scores(query, documents, instruction=instruction))
    server = client.rerank(target.model_name, query, documents, instruction)

    print("query", query)
    print("documents", list(documents))
    print(f"HF Duration: {hf.duration_ms:.3f} ms")
    print(f"Server Duration: {server.duration_ms:.3f} ms")
    print("HF reranking:", hf.values)
    print("Server reranking:", server.values)
    long_documents = [
        i
        for i, n in enumerate(reference.pair_lengths(query, documents, instruction))
        if n > reference.max_length
    ]
    if long_documents:
        print(
            f"note: documents {long_documents} exceed {reference.max_length} tokens with the query: "
            "Hugging Face truncates them, the server scores their chunks (highest chunk), "
            "so their scores may differ"
        )
    largest = float(np.max(np.abs(hf.values - server.values)))
    return _verdict(
        largest,
        tolerance if tolerance is not None else _default_tolerance(RERANK_TOLERANCE, target),
        "Largest absolute difference",
    )


def compare_embeddings(
    client: ServerClient,
    target: Target,
    hf_model: str,
    inputs: Sequence[str],
    max_length: int | None,
    tolerance: float | None,
    prompt_name: str | None = None,
    trust_remote_code: bool = False,
) -> int:
    exported = target.exported
    max_length = max_length or (exported.tokenizer_info.max_length if exported else None)
    options = exported.embeddings_options if exported else EmbeddingsOptions()
    pooling, normalize = options.pooling, options.normalize_embeddings
    post_pooling = exported.model_info.post_pooling if exported else []
    prompts = exported.tokenizer_info.prompts if exported else {}
    if prompt_name is not None and exported is not None and prompt_name not in prompts:
        names = ", ".join(prompts) or "none"
        raise CompareError(f"--prompt_name {prompt_name}: the export has the prompts {names}")
    with _loading_reference(hf_model):
        reference = HFEmbedder(
            hf_model, max_length, pooling, normalize, post_pooling, prompts, trust_remote_code
        )
    reference.embed(inputs[:1], prompt_name)
    client.embed(target.model_name, inputs[:1], prompt_name)
    hf = _timed(lambda: reference.embed(inputs, prompt_name))
    server = client.embed(target.model_name, inputs, prompt_name)
    if hf.values.shape != server.values.shape:
        raise CompareError(
            f"embedding shapes differ: Hugging Face {hf.values.shape}, server {server.values.shape}"
        )

    cosine = np.sum(hf.values * server.values, axis=1) / (
        np.linalg.norm(hf.values, axis=1) * np.linalg.norm(server.values, axis=1)
    )
    print("inputs", list(inputs))
    print(f"HF Duration: {hf.duration_ms:.3f} ms ({reference.description})")
    print(f"Server Duration: {server.duration_ms:.3f} ms")
    print("Cosine similarity:", cosine.astype(np.float32))
    largest = float(np.max(1.0 - cosine))
    return _verdict(
        max(largest, 0.0),
        tolerance if tolerance is not None else _default_tolerance(EMBEDDINGS_TOLERANCE, target),
        "Largest cosine distance",
    )


def run_compare(
    *,
    query: str | None,
    documents: Sequence[str],
    inputs: Sequence[str],
    base_url: str,
    model_name: str | None,
    hf_model: str | None,
    config_path: Path | None,
    max_length: int | None,
    tolerance: float | None,
    instruction: str | None = None,
    prompt_name: str | None = None,
    trust_remote_code: bool = False,
) -> int:
    """The whole check; returns the exit code. Raises CompareError when it cannot run."""
    if query is not None and inputs:
        raise CompareError("use --query/--document (rerank) or --input (embeddings), not both")
    if query is not None and not documents:
        raise CompareError("--query needs at least one --document")
    if query is None and not inputs:
        raise CompareError(
            "nothing to compare: pass --query with --document (rerank) or --input (embeddings)"
        )
    task = Task.RERANK if query is not None else Task.EMBEDDINGS
    if config_path is not None and not config_path.is_file():
        config_path = None  # a server started elsewhere: then --hf_model (and --model_name) are needed

    client = ServerClient(base_url)
    try:
        target = _choose_model(client, task, model_name, config_path)
        if hf_model is None:
            if target.exported is None:
                raise CompareError(
                    "the source model is unknown: pass --hf_model, or --config_path with the repository "
                    "the server serves"
                )
            hf_model = target.exported.model_info.source_model
            try:
                check_reference_path(hf_model)
            except CompareError as exc:
                raise CompareError(f"{exc} (the source recorded at export): pass --hf_model") from exc
        check_reference_path(hf_model)
        if task is Task.RERANK:
            assert query is not None
            return compare_rerank(
                client,
                target,
                hf_model,
                query,
                documents,
                max_length,
                tolerance,
                instruction,
                trust_remote_code,
            )
        return compare_embeddings(
            client, target, hf_model, inputs, max_length, tolerance, prompt_name, trust_remote_code
        )
    finally:
        client.close()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--query", help="Rerank: the query.")
@click.option("--document", "documents", multiple=True, help="Rerank: a document (repeat for more).")
@click.option("--input", "inputs", multiple=True, help="Embeddings: an input text (repeat for more).")
@click.option(
    "--base_url", default="http://localhost:8000/v3", show_default=True, help="The server's /v3 root."
)
@click.option("--model_name", help="The model as served (default: the one served model of that task).")
@click.option(
    "--hf_model", help="Reference: hub id or local folder (default: the source recorded at export)."
)
@click.option(
    "--config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("models") / CONFIG_FILE,
    show_default=True,
    help="The repository the server serves: where the export's records are read.",
)
@click.option(
    "--max_length", type=click.IntRange(min=2), help="Token limit of the reference (default: the export's)."
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0.0),
    help="Rerank: largest allowed score difference; embeddings: largest cosine distance "
    "(default by weight format: rerank fp32 1e-3, fp16 2e-2, int8 5e-2; embeddings 1e-4, 2e-3, 1e-2).",
)
@click.option(
    "--instruction", help="Rerank, instruction-following models: the instruction (default: the export's)."
)
@click.option("--prompt_name", help="Embeddings: one of the model's prompts, for both sides (e.g. query).")
@click.option("--trust_remote_code", is_flag=True, help="Run the reference model's own code (auto_map).")
def main(
    query: str | None,
    documents: tuple[str, ...],
    inputs: tuple[str, ...],
    base_url: str,
    model_name: str | None,
    hf_model: str | None,
    config_path: Path,
    max_length: int | None,
    tolerance: float | None,
    instruction: str | None,
    prompt_name: str | None,
    trust_remote_code: bool,
) -> None:
    """Compare the server's rerank scores or embeddings with the Hugging Face model's."""
    try:
        code = run_compare(
            query=query,
            documents=documents,
            inputs=inputs,
            base_url=base_url,
            model_name=model_name,
            hf_model=hf_model,
            config_path=config_path,
            max_length=max_length,
            tolerance=tolerance,
            instruction=instruction,
            prompt_name=prompt_name,
            trust_remote_code=trust_remote_code,
        )
    except CompareError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(code)


if __name__ == "__main__":
    main()
