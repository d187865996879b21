"""The ONNX Runtime embedder: the same vectors as PyTorch, a cache that survives races and damage,
a PyTorch fallback, and settings that refuse bad values."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inference.embeddings import LocalEmbedder, bundled_model_path
from inference.onnx_embedder import OnnxEmbedder
from inference.onnx_export import ExportError, cached_model, model_paths, sha256_file
from inference.onnx_session import OnnxSession

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "What is the refund policy for annual subscriptions?",
    "",
    " ",
    "\n\t",
    "a",
    "   a question padded with spaces   ",
    "Ünïcödé café naïve — 東京の天気は？",
    # Past the model's 256 word pieces: truncated exactly as sentence-transformers truncates.
    " ".join(f"Clause {n}: the supplier delivers the goods within thirty days of the order." for n in range(80)),
    "word " * 1000,
]


@pytest.fixture(scope="module")
def pytorch():
    return LocalEmbedder()


@pytest.fixture(scope="module")
def reference(pytorch):
    return np.asarray(pytorch.embed(TEXTS))


def cache_dir() -> Path:
    from django.conf import settings

    return Path(settings.EMBEDDING_CACHE_DIR)


@pytest.mark.parametrize("precision, floor", [("fp32", 0.999), ("int8", 0.97)])
def test_onnx_vectors_match_pytorch_for_short_long_and_empty_texts(reference, precision, floor):
    embedder = OnnxEmbedder(cache_dir=cache_dir(), precision=precision)
    together = np.asarray(embedder.embed(TEXTS))  # one padded batch
    alone = np.asarray([embedder.embed([text])[0] for text in TEXTS])
    assert embedder.active == f"onnx-{precision}"
    # int8 strays most on texts with no words (0.976 for ""); passages stay >= 0.99 (bench/embed.py).
    for vectors in (together, alone):
        assert vectors.shape == (len(TEXTS), 384)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
        cosine = (vectors * reference).sum(axis=1)
        assert cosine.min() >= floor, dict(zip(TEXTS, cosine.round(5)))


def test_tokenisation_is_the_sentence_transformers_one(pytorch):
    model = pytorch._load()
    expected = model.tokenize(TEXTS)
    cached = cached_model(cache_dir(), Path(bundled_model_path()), "fp32")
    session = OnnxSession(cached.path, Path(bundled_model_path()), cached.manifest["max_length"])
    ours = session.encode_ids(TEXTS)
    for row, ids in enumerate(ours):
        mask = expected["attention_mask"][row].bool()
        assert ids == expected["input_ids"][row][mask].tolist()
    assert max(len(ids) for ids in ours) == 256


def _export_in_child(directory: str, queue) -> None:
    from inference.onnx_export import cached_model

    try:
        queue.put(cached_model(Path(directory), Path(bundled_model_path()), "fp32").manifest["sha256"])
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put(f"error: {exc!r}")


def test_two_workers_starting_at_once_export_one_sound_model(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    children = [context.Process(target=_export_in_child, args=(str(tmp_path), queue)) for _ in range(2)]
    for child in children:
        child.start()
    answers = [queue.get(timeout=900) for _ in children]
    for child in children:
        child.join(timeout=60)
    path, manifest = model_paths(tmp_path, Path(bundled_model_path()), "fp32")
    assert answers[0] == answers[1] == sha256_file(path), answers
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".export.lock", path.name, manifest.name])
    vectors = OnnxEmbedder(cache_dir=tmp_path, precision="fp32").embed(["hello"])
    assert len(vectors[0]) == 384


def test_a_damaged_cached_model_is_exported_again(tmp_path, reference, caplog):
    source = cached_model(cache_dir(), Path(bundled_model_path()), "fp32")
    target, manifest = model_paths(tmp_path, Path(bundled_model_path()), "fp32")
    shutil.copy(source.path, target)
    shutil.copy(source.path.with_suffix(".json"), manifest)
    with target.open("r+b") as handle:  # a disk error in the middle of the weights
        handle.seek(target.stat().st_size // 2)
        handle.write(b"\x7f" * 4096)
    caplog.set_level(logging.WARNING)
    embedder = OnnxEmbedder(cache_dir=tmp_path, precision="fp32")
    cosine = (np.asarray(embedder.embed(TEXTS)) * reference).sum(axis=1)
    assert embedder.active == "onnx-fp32" and cosine.min() >= 0.999
    assert "does not match its checksum" in caplog.text
    assert sha256_file(target) == json.loads(manifest.read_text())["sha256"]


def test_it_falls_back_to_pytorch_with_a_clear_log_line(tmp_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ExportError("onnxruntime is broken here")

    monkeypatch.setattr("inference.onnx_export.cached_model", broken)
    caplog.set_level(logging.WARNING)
    sentinel = LocalEmbedder()
    embedder = OnnxEmbedder(cache_dir=tmp_path, fallback=lambda: sentinel)
    assert embedder.active == "torch"
    assert embedder.embed(["hello"]) == sentinel.embed(["hello"])
    assert "embedding with PyTorch" in caplog.text and "onnxruntime is broken here" in caplog.text


def test_the_default_cpu_embedder_is_onnx_and_a_gpu_gets_pytorch(settings):
    from connectors.indexing import get_embedder

    try:
        get_embedder.cache_clear()
        assert isinstance(get_embedder(), OnnxEmbedder)
        settings.EMBEDDING_DEVICE = "cuda"
        get_embedder.cache_clear()
        chosen = get_embedder()
        assert isinstance(chosen, LocalEmbedder) and chosen.device == "cuda"
    finally:
        get_embedder.cache_clear()


@pytest.mark.parametrize("name, value", [
    ("EMBEDDING_BACKEND", "gpu"), ("EMBEDDING_DEVICE", "tpu"), ("EMBEDDING_ONNX_PRECISION", "int4"),
    ("EMBEDDING_THREADS", "-1"),
])
def test_a_bad_embedding_setting_stops_start_up_naming_it(name, value):
    env = {**os.environ, "SECRET_KEY": "test-only-secret", name: value}
    result = subprocess.run([sys.executable, "-c", "import assistant.settings"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr.splitlines()[-1]
