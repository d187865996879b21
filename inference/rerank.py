"""Cross-encoder reranking over HTTP: the `/rerank` API that vLLM, llama.cpp's server,
Infinity and TEI share (query + documents in, relevance scores out)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from inference.tls import tls_context


class RerankError(Exception):
    pass


@dataclass
class HttpReranker:
    base_url: str
    model: str
    api_key: str = "none"
    timeout: float = 30.0

    def scores(self, query: str, documents: list[str]) -> list[float]:
        """One relevance score per document, in the documents' order."""
        if not documents:
            return []
        try:
            response = httpx.post(
                f"{self.base_url}/rerank",
                json={"model": self.model, "query": query, "documents": documents, "top_n": len(documents)},
                headers={"Authorization": f"Bearer {self.api_key}"},
                timeout=self.timeout,
                verify=tls_context(),
            )
            response.raise_for_status()
            results = response.json()["results"]
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise RerankError(f"The reranking server at {self.base_url} failed: {exc}") from exc
        scores = [float("-inf")] * len(documents)
        for result in results:
            scores[int(result["index"])] = float(result.get("relevance_score", result.get("score", 0.0)))
        return scores
