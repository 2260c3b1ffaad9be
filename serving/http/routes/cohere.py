"""Cohere rerank: /v3/rerank (the reference server's path), /v2/rerank (cohere.ClientV2),
/v1/rerank and /v3/v1/rerank (cohere.Client with base_url .../v3), /v3/v2/rerank."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from fastapi import APIRouter, Request

from serving.errors import InvalidRequest
from serving.http.responses import JSONBody, json_body
from serving.http.routes.service import ModelService
from serving.http.schemas import ERROR_RESPONSES, RerankRequest, RerankResponse

RERANK_PATHS = ("/v3/rerank", "/v2/rerank", "/v1/rerank", "/v3/v1/rerank", "/v3/v2/rerank")
DOCUMENTED_PATHS = ("/v3/rerank", "/v2/rerank")


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
        served = await service.rerank(
            request,
            body.model,
            body.query,
            texts,
            raw_scores=body.raw_scores,
            max_chunks_per_doc=body.max_chunks_per_doc,
            max_tokens_per_doc=body.max_tokens_per_doc,
            instruction=body.instruction,
        )
        outcome = served.outcome
        results: list[dict[str, Any]] = []
        for index, score in ranked(outcome.scores, body.top_n):
            result: dict[str, Any] = {"index": index, "relevance_score": score}
            if body.return_documents:
                document = body.documents[index]
                result["document"] = (
                    {"text": document} if isinstance(document, str) else {"text": texts[index], **document}
                )
            results.append(result)
        usage = {"prompt_tokens": outcome.prompt_tokens, "total_tokens": outcome.prompt_tokens}
        reply = {"id": str(uuid.uuid4()), "model": served.model, "results": results, "usage": usage}
        return json_body(reply, headers=served.headers)

    for path in RERANK_PATHS:
        router.add_api_route(
            path,
            rerank,
            methods=["POST"],
            response_model=RerankResponse,
            responses=ERROR_RESPONSES,
            tags=["rerank"],
            include_in_schema=path in DOCUMENTED_PATHS,
        )
    return router
