"""OpenAI embeddings: /v3/embeddings (the reference server's path), /v1/embeddings, /v3/v1/embeddings."""

from __future__ import annotations

from fastapi import APIRouter, Request

from serving.http.responses import JSONBody, embedding_rows, json_with_list
from serving.http.routes.service import ModelService
from serving.http.schemas import ERROR_RESPONSES, EmbeddingsRequest, EmbeddingsResponse
from serving.pipelines.embeddings import EmbeddingsParams

EMBEDDINGS_PATHS = ("/v3/embeddings", "/v1/embeddings", "/v3/v1/embeddings")


def build_router(service: ModelService) -> APIRouter:
    router = APIRouter()

    async def embeddings(body: EmbeddingsRequest, request: Request) -> JSONBody:
        """Embed texts or token-id lists (OpenAI embeddings)."""
        is_text = isinstance(body.input[0], str)
        params = EmbeddingsParams(
            dimensions=body.dimensions, prompt_name=body.prompt_name, input_type=body.input_type
        )
        served = await service.embed(
            request,
            body.model,
            params,
            texts=body.input if is_text else None,  # type: ignore[arg-type]
            token_ids=None if is_text else body.input,  # type: ignore[arg-type]
        )
        vectors = served.outcome.vectors
        rows = embedding_rows(vectors, body.encoding_format, served.outcome.normalized, "encoding_format")
        data = [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(rows)]
        usage = {"prompt_tokens": served.outcome.prompt_tokens, "total_tokens": served.outcome.prompt_tokens}
        head = {"object": "list", "model": served.model, "usage": usage}
        return await json_with_list(head, "data", data, vectors.size, headers=served.headers)

    for path in EMBEDDINGS_PATHS:
        router.add_api_route(
            path,
            embeddings,
            methods=["POST"],
            response_model=EmbeddingsResponse,
            responses=ERROR_RESPONSES,
            tags=["embeddings"],
            include_in_schema=path == "/v3/embeddings",
        )
    return router
