"""Cohere rerank and embed.

Rerank: /v3/rerank (the reference server's path), /v2/rerank (cohere.ClientV2), /v1/rerank and
/v3/v1/rerank (cohere.Client with base_url .../v3), /v3/v2/rerank. One response carries Cohere's
shape and what GPUStack/llama.cpp and the short-name rerank services add (`object`, `meta` counts);
/v1/rerank returns documents unless asked not to, as GPUStack and Jina do.

Embed: /v2/embed (cohere.ClientV2.embed), /v1/embed (cohere.Client.embed), and both under /v3.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from fastapi import APIRouter, Request

from serving.errors import InvalidRequest
from serving.http.middleware import elapsed
from serving.http.responses import JSONBody, embedding_rows, float_list, json_body, json_with_list
from serving.http.routes.service import ModelService, request_field_names
from serving.http.schemas import (
    ERROR_RESPONSES,
    CohereEmbedRequest,
    CohereEmbedResponse,
    RerankRequest,
    RerankResponse,
)
from serving.pipelines.embeddings import EmbeddingsParams
from serving.pipelines.framing import Overflow
from serving.pipelines.rerank import RerankParams

RERANK_PATHS = ("/v3/rerank", "/v2/rerank", "/v1/rerank", "/v3/v1/rerank", "/v3/v2/rerank")
DOCUMENTED_RERANK_PATHS = ("/v3/rerank", "/v2/rerank", "/v1/rerank")
# Where a request that does not say gets its documents back (GPUStack / llama-box and Jina do).
RETURNS_DOCUMENTS_BY_DEFAULT = ("/v1/rerank", "/v3/v1/rerank")
EMBED_PATHS = ("/v2/embed", "/v1/embed", "/v3/v2/embed", "/v3/v1/embed")
DOCUMENTED_EMBED_PATHS = ("/v2/embed", "/v1/embed")
# Cohere's truncate: END (its default) cuts the end of a long text, START its start, NONE refuses it.
COHERE_TRUNCATION = {"END": Overflow.CUT_RIGHT, "START": Overflow.CUT_LEFT, "NONE": Overflow.REFUSE}


def api_version(path: str) -> dict[str, str]:
    """Cohere's meta.api_version: an object, as its SDKs type it."""
    return {"version": "1" if "/v1/" in path else "2"}


def document_text(index: int, document: str | dict[str, Any], rank_fields: list[str] | None) -> str:
    """The text a document is ranked on: the string, its 'text' field, or 'field: value' lines."""
    if isinstance(document, str):
        return document
    if rank_fields:
        parts = [f"{name}: {document[name]}" for name in rank_fields if name in document]
        if not parts:
            raise InvalidRequest(f"item {index} has none of the rank_fields {rank_fields}", field="documents")
        return "\n".join(parts)
    if "text" not in document:
        raise InvalidRequest(f"item {index} needs a 'text' field (or pass rank_fields)", field="documents")
    return str(document["text"])


def ranked(scores: np.ndarray, top_n: int | None) -> list[tuple[int, float]]:
    """(index, score) highest first (ties keep request order), cut to top_n."""
    order = np.argsort(-scores, kind="stable")
    if top_n is not None:
        order = order[:top_n]
    return list(zip(order.tolist(), scores[order].tolist(), strict=True))


def build_router(service: ModelService) -> APIRouter:
    router = APIRouter()

    async def rerank(body: RerankRequest, request: Request) -> JSONBody:
        """Score documents against a query (Cohere rerank). Sorted by relevance, highest first."""
        texts = [document_text(i, doc, body.rank_fields) for i, doc in enumerate(body.documents)]
        params = RerankParams(
            raw_scores=body.raw_scores,
            max_chunks_per_doc=body.max_chunks_per_doc,
            max_tokens_per_doc=body.max_tokens_per_doc,
            instruction=body.instruction,
        )
        served = await service.rerank(request, body.model, body.query, texts, params)
        outcome = served.outcome
        return_documents = body.return_documents
        if return_documents is None:
            return_documents = request.url.path in RETURNS_DOCUMENTS_BY_DEFAULT
        results: list[dict[str, Any]] = []
        for index, score in ranked(outcome.scores, body.top_n):
            result: dict[str, Any] = {"index": index, "relevance_score": score}
            if return_documents:
                document = body.documents[index]
                result["document"] = (
                    {"text": document} if isinstance(document, str) else {"text": texts[index], **document}
                )
            results.append(result)
        usage = {"prompt_tokens": outcome.prompt_tokens, "total_tokens": outcome.prompt_tokens}
        meta = {
            "api_version": api_version(request.url.path),
            "processing_time_ms": round(elapsed(request.scope) * 1000),
            "total_documents": len(texts),
            "returned_documents": len(results),
        }
        reply = {
            "id": str(uuid.uuid4()),
            "object": "list",
            "model": served.model,
            "results": results,
            "usage": usage,
            "meta": meta,
        }
        return json_body(reply, headers=served.headers)

    async def embed(body: CohereEmbedRequest, request: Request) -> JSONBody:
        """Embed texts (Cohere embed): by type when embedding_types is given (always on /v2/embed)."""
        with request_field_names({"input": "texts", "dimensions": "output_dimension"}):
            params = EmbeddingsParams(
                dimensions=body.output_dimension,
                input_type=body.input_type,
                overflow=COHERE_TRUNCATION[(body.truncate or "END").upper()],
                max_tokens=body.max_tokens,
            )
            served = await service.embed(request, body.model, params, texts=body.texts)
        vectors, outcome = served.outcome.vectors, served.outcome
        head: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "texts": body.texts,
            "meta": {
                "api_version": api_version(request.url.path),
                "billed_units": {"input_tokens": outcome.prompt_tokens},
            },
        }
        if body.embedding_types is None and "/v1/" in request.url.path:
            head["response_type"] = "embeddings_floats"
            rows: Any = float_list(vectors)
        else:
            head["response_type"] = "embeddings_by_type"
            kinds = dict.fromkeys(body.embedding_types or ["float"])
            rows = {
                kind: embedding_rows(vectors, kind, outcome.normalized, "embedding_types") for kind in kinds
            }
        values = vectors.size * (len(rows) if isinstance(rows, dict) else 1)
        return await json_with_list(head, "embeddings", rows, values, headers=served.headers)

    for path in RERANK_PATHS:
        router.add_api_route(
            path,
            rerank,
            methods=["POST"],
            response_model=RerankResponse,
            responses=ERROR_RESPONSES,
            tags=["rerank"],
            include_in_schema=path in DOCUMENTED_RERANK_PATHS,
        )
    for path in EMBED_PATHS:
        router.add_api_route(
            path,
            embed,
            methods=["POST"],
            response_model=CohereEmbedResponse,
            responses=ERROR_RESPONSES,
            tags=["embeddings"],
            include_in_schema=path in DOCUMENTED_EMBED_PATHS,
        )
    return router
