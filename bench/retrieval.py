"""Retrieval latency and recall on a synthetic but realistic index (200,000 chunks by default;
`--chunks 1000000` for the million-chunk figures in README).

Loads a scratch database with connectors, documents and chunks (384-dimensional vectors,
texts, ACLs) shaped like a real index, then measures the product's own code path
(`connectors.selectors.chunks_search` and friends, ORM included), timed end to end in Python:

- p50/p95/mean latency of the hybrid query, of its dense side and of its full-text side, for
  (a) a "broad" reader who sees the public chunks (70%) plus two groups' chunks, and
  (b) the same reader with a selective restriction that leaves about 1% of the chunks
      visible: a filter on one connector (SearchFilters(connector_ids=...)) holding 1% of the
      chunks, all of them non-public and shared only with the group "rare". The project's ACL
      is `acl_public OR acl_groups && groups`, so an ACL alone can never hide the public 70%;
      a connector filter on top of the ACL is how a 1% visible set happens in the product.
- recall@10 (and recall@candidates) of the HNSW side (`chunk_ids_dense`, product settings)
  against an exact scan of the same query with the same ACL and filter (index scans off,
  checked with EXPLAIN), for both readers. The targets use the call the product makes
  (RAG_CANDIDATES neighbours, the top 10 of them fused); a direct k=10 call is reported too.

Data (seeded, deterministic):
- vectors: a hierarchy like real sentence embeddings, which are clustered and anisotropic,
  not uniform: a shared mean direction, super-topics, topics (1 per 100 chunks, at most
  2,000), a per-document offset and per-chunk noise whose spectrum decays as a power law
  (effective dimension about 26). Typical cosines: unrelated 0.1, same topic 0.55, same
  document 0.7 (measured values are in the output);
- texts: ~200-token chunks of pseudo-words: English stop words (removed by the 'english'
  configuration, as in real text), a general vocabulary of 5,000 words and 25 topic words per
  topic (from a pool of 10,000). The general words follow a Zipf-Mandelbrot law (s=1.15,
  q=30) fitted to the document frequencies of the PostgreSQL 15 manual cut into 150-word
  chunks, where the 1st/10th/50th/100th/500th most common lexemes occur in 61/27/15/9/2% of
  the chunks (here about 41/32/16/10/2%), so full-text queries have realistic selectivity
  (the fraction of chunks they match is in the output);
- queries: half are paraphrase-like perturbations of a chunk, half topic-level questions;
  each has 2-4 words from its topic and the general vocabulary.

Loading uses COPY with the HNSW and GIN indexes dropped and re-created afterwards (the same
definitions as the migrations; the HNSW one with --dense-index, --m, --ef-construction,
--maintenance-work-mem and --parallel-workers, its build time and size reported), then VACUUM
ANALYZE. Recall is against an exact ranking by the float32 vectors. Progress goes to stderr;
prints one JSON object.

Usage: .venv/bin/python bench/retrieval.py [--chunks 200000] [--queries 200] [--keep | --reuse [--rebuild-hnsw]]
       [--dense-index halfvec|vector] [--m 16] [--ef-construction 64] [--maintenance-work-mem 2GB]
       [--parallel-workers 2]
       [--database-url postgres://postgres@127.0.0.1:5432/bench_retrieval]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DIM = 384
N_CONNECTORS = 20
PUBLIC_FRACTION = 0.70
SELECTIVE_FRACTION = 0.01
GROUPS = [f"g{i:02d}" for i in range(10)]
READER_GROUPS = ["g01", "rare"]
K = 10
RECALL_QUERIES = 100
FULLTEXT_FRACTION_QUERIES = 50  # a count(*) each, seconds at a million chunks
SEED = 20261127

# Vector hierarchy: squared weights of the shared parts (they sum to 1).
W_GLOBAL, W_SUPER, W_TOPIC, W_DOC, W_CHUNK = 0.12, 0.20, 0.23, 0.15, 0.30

STOP_WORDS = (
    "the of and to a in is for that it on with as be by this are or at from an was which can if not will "
    "has have all its when their more also into only other these so"
).split()
N_GENERAL = 5000
GENERAL_ZIPF = (1.15, 30)  # Zipf-Mandelbrot exponent and offset of the general vocabulary
N_TOPIC_POOL = 10000
TOPIC_WORDS = 25
TOKENS_PER_CHUNK = (120, 170)  # words; about 200 tokens, the product's CHUNK_TOKENS


# --- database --------------------------------------------------------------------------------


def admin_url(database_url: str) -> tuple[str, str]:
    base, name = database_url.rsplit("/", 1)
    return base + "/postgres", name


def create_database(database_url: str) -> None:
    import psycopg

    url, name = admin_url(database_url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = dict(os.environ, **bench_environment(database_url))
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True, env=env)


def drop_database(database_url: str) -> None:
    import psycopg

    url, name = admin_url(database_url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_environment(database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret"),
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "assistant.settings",
    }


# --- synthetic corpus ------------------------------------------------------------------------


def pseudo_words(rng: np.random.Generator, count: int, taken: set[str]) -> list[str]:
    onsets = "b c d f g h j k l m n p r t v w z br cr dr fl gr pl st tr ch sh th qu sk sp".split()
    vowels = "a e i o u ai ea ou io ae".split()
    codas = ["", "", "n", "r", "l", "t", "m", "x", "nd", "rt", "lk"]
    words: list[str] = []
    while len(words) < count:
        syllables = int(rng.integers(2, 5))
        word = "".join(onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))] for _ in range(syllables))
        word += codas[rng.integers(len(codas))]
        if len(word) >= 4 and word not in taken:
            taken.add(word)
            words.append(word)
    return words


def zipf_weights(n: int, s: float, q: float = 0) -> np.ndarray:
    weights = 1.0 / (np.arange(1, n + 1) + q) ** s
    return weights / weights.sum()


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@dataclass
class Corpus:
    n_topics: int
    doc_topic: np.ndarray  # per document
    doc_connector: np.ndarray
    doc_public: np.ndarray
    doc_groups: list[list[str]]
    doc_first_chunk: np.ndarray  # index of each document's first chunk
    doc_chunks: np.ndarray
    chunk_doc: np.ndarray
    chunk_ordinal: np.ndarray
    chunk_texts: list[str]
    vectors: np.ndarray  # float32, unit norm
    topic_words: np.ndarray  # (n_topics, TOPIC_WORDS) indices into vocabulary
    vocabulary: list[str]
    general_offset: int
    spectrum_basis: np.ndarray
    spectrum_std: np.ndarray
    parts: dict  # centroids kept for queries
    selective_connector: int


def anisotropic(rng: np.random.Generator, n: int, std: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Noise with a power-law spectrum in a random basis; expected squared norm 1."""
    return ((rng.standard_normal((n, DIM)) * std) @ basis.T).astype(np.float32)


def isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    return (rng.standard_normal((n, DIM)) / np.sqrt(DIM)).astype(np.float32)


def synthesize(n_chunks: int, seed: int = SEED) -> Corpus:
    rng = np.random.default_rng(seed)
    n_topics = int(np.clip(n_chunks // 100, 20, 2000))
    n_super = max(5, n_topics // 20)

    # documents: about 5 chunks each (geometric), cut to exactly n_chunks
    sizes = np.minimum(rng.geometric(1 / 5, size=n_chunks), 30)
    ends = np.cumsum(sizes)
    n_docs = int(np.searchsorted(ends, n_chunks) + 1)
    sizes = sizes[:n_docs].copy()
    sizes[-1] -= int(ends[n_docs - 1] - n_chunks)
    doc_first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    chunk_doc = np.repeat(np.arange(n_docs), sizes)
    chunk_ordinal = np.arange(n_chunks) - doc_first[chunk_doc]

    doc_topic = rng.choice(n_topics, size=n_docs, p=zipf_weights(n_topics, 0.6))
    topic_super = rng.integers(n_super, size=n_topics)

    # connectors: one holds ~1% of the chunks (non-public, group "rare"), 19 share the rest unevenly
    selective = N_CONNECTORS - 1
    doc_connector = rng.choice(N_CONNECTORS - 1, size=n_docs, p=zipf_weights(N_CONNECTORS - 1, 0.7))
    order = rng.permutation(n_docs)
    taken = np.cumsum(sizes[order]) <= max(K * 2, round(SELECTIVE_FRACTION * n_chunks))
    doc_connector[order[taken]] = selective
    in_selective = doc_connector == selective
    selective_share = sizes[in_selective].sum() / n_chunks
    doc_public = (rng.random(n_docs) < PUBLIC_FRACTION / (1 - selective_share)) & ~in_selective
    group_weights = zipf_weights(len(GROUPS), 0.8)
    doc_groups: list[list[str]] = []
    for i in range(n_docs):
        if in_selective[i]:
            doc_groups.append(["rare"])
        elif doc_public[i]:
            doc_groups.append([])
        else:
            n = 1 + int(rng.random() < 0.3)
            doc_groups.append(sorted(rng.choice(GROUPS, size=n, replace=False, p=group_weights).tolist()))

    # vocabulary: stop words, general words, topic words
    used: set[str] = set(STOP_WORDS)
    general = pseudo_words(rng, N_GENERAL, used)
    pool = pseudo_words(rng, N_TOPIC_POOL, used)
    vocabulary = STOP_WORDS + general + pool
    general_offset = len(STOP_WORDS)
    pool_offset = general_offset + N_GENERAL
    topic_words = np.stack(
        [pool_offset + rng.choice(N_TOPIC_POOL, TOPIC_WORDS, replace=False) for _ in range(n_topics)]
    )

    chunk_texts = make_texts(rng, chunk_doc, chunk_ordinal, sizes, doc_topic, topic_words, vocabulary, general_offset)

    # vectors
    basis, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    std = 1.0 / np.sqrt(np.arange(1, DIM + 1))
    std = std / np.sqrt((std**2).sum())
    mean_direction = normalise(rng.standard_normal(DIM)).astype(np.float32)
    supers = normalise(isotropic(rng, n_super))
    topics = normalise(isotropic(rng, n_topics))
    topic_base = (
        np.sqrt(W_GLOBAL) * mean_direction + np.sqrt(W_SUPER) * supers[topic_super] + np.sqrt(W_TOPIC) * topics
    ).astype(np.float32)
    doc_offsets = anisotropic(rng, n_docs, std, basis)
    vectors = np.empty((n_chunks, DIM), dtype=np.float32)
    for start in range(0, n_chunks, 20000):
        stop = min(start + 20000, n_chunks)
        docs = chunk_doc[start:stop]
        block = topic_base[doc_topic[docs]] + np.sqrt(W_DOC) * doc_offsets[docs]
        block += np.sqrt(W_CHUNK) * anisotropic(rng, stop - start, std, basis)
        vectors[start:stop] = normalise(block)

    return Corpus(
        n_topics=n_topics, doc_topic=doc_topic, doc_connector=doc_connector, doc_public=doc_public,
        doc_groups=doc_groups, doc_first_chunk=doc_first, doc_chunks=sizes, chunk_doc=chunk_doc,
        chunk_ordinal=chunk_ordinal, chunk_texts=chunk_texts, vectors=vectors, topic_words=topic_words,
        vocabulary=vocabulary, general_offset=general_offset, spectrum_basis=basis, spectrum_std=std,
        parts={"topic_base": topic_base}, selective_connector=selective,
    )


def make_texts(rng, chunk_doc, chunk_ordinal, sizes, doc_topic, topic_words, vocabulary, general_offset) -> list[str]:
    """Chunks of sentences: 35% stop words, 40% general words (Zipf), 25% words of the topic (Zipf)."""
    n_chunks = len(chunk_doc)
    lengths = rng.integers(*TOKENS_PER_CHUNK, size=n_chunks)
    last = chunk_ordinal == sizes[chunk_doc] - 1
    lengths[last] = np.maximum(20, (lengths[last] * rng.uniform(0.2, 1.0, size=last.sum())).astype(int))
    with_period = vocabulary + [w + "." for w in vocabulary]
    stop_p = zipf_weights(len(STOP_WORDS), 1.0)
    general_p = zipf_weights(N_GENERAL, *GENERAL_ZIPF)
    topic_p = zipf_weights(TOPIC_WORDS, 0.9)
    texts: list[str] = []
    for start in range(0, n_chunks, 10000):
        stop = min(start + 10000, n_chunks)
        total = int(lengths[start:stop].sum())
        kind = rng.random(total)
        ids = np.empty(total, dtype=np.int64)
        is_stop, is_general = kind < 0.35, (kind >= 0.35) & (kind < 0.75)
        is_topic = ~(is_stop | is_general)
        ids[is_stop] = rng.choice(len(STOP_WORDS), size=is_stop.sum(), p=stop_p)
        ids[is_general] = general_offset + rng.choice(N_GENERAL, size=is_general.sum(), p=general_p)
        topics = np.repeat(doc_topic[chunk_doc[start:stop]], lengths[start:stop])
        ids[is_topic] = topic_words[topics[is_topic], rng.choice(TOPIC_WORDS, size=is_topic.sum(), p=topic_p)]
        ids[rng.random(total) < 1 / 14] += len(vocabulary)  # sentence ends
        ids_list = ids.tolist()
        position = 0
        for length in lengths[start:stop].tolist():
            words = [with_period[i] for i in ids_list[position:position + length]]
            position += length
            if not words[-1].endswith("."):
                words[-1] += "."
            words[0] = words[0].capitalize()
            texts.append(" ".join(words))
    return texts


@dataclass
class Query:
    embedding: list[float]
    text: str
    kind: str
    topic: int


def make_queries(corpus: Corpus, n: int, seed: int = SEED + 1) -> list[Query]:
    rng = np.random.default_rng(seed)
    general_p = zipf_weights(N_GENERAL, *GENERAL_ZIPF)
    topic_p = zipf_weights(TOPIC_WORDS, 0.9)
    queries = []
    for i in range(n):
        if i % 2 == 0:  # a question answered by one chunk: near it, not on it
            chunk = int(rng.integers(len(corpus.vectors)))
            topic = int(corpus.doc_topic[corpus.chunk_doc[chunk]])
            noise = anisotropic(rng, 1, corpus.spectrum_std, corpus.spectrum_basis)[0]
            vector = corpus.vectors[chunk] + 0.7 * noise
            kind = "chunk"
        else:  # a question about a topic
            topic = int(rng.choice(corpus.n_topics, p=zipf_weights(corpus.n_topics, 0.6)))
            noise = anisotropic(rng, 1, corpus.spectrum_std, corpus.spectrum_basis)[0]
            vector = corpus.parts["topic_base"][topic] + np.sqrt(1 - W_GLOBAL - W_SUPER - W_TOPIC) * noise
            kind = "topic"
        words = []
        for _ in range(int(rng.integers(2, 5))):
            if rng.random() < 0.6:
                words.append(corpus.vocabulary[corpus.topic_words[topic, rng.choice(TOPIC_WORDS, p=topic_p)]])
            else:
                words.append(corpus.vocabulary[corpus.general_offset + rng.choice(N_GENERAL, p=general_p)])
        queries.append(Query(normalise(vector).astype(np.float32).tolist(), " ".join(words), kind, topic))
    return queries


def cosine_profile(corpus: Corpus, rng: np.random.Generator, samples: int = 2000) -> dict:
    """Mean cosine of chunk pairs that are unrelated, share a topic, share a document."""
    v = corpus.vectors
    a, b = rng.integers(len(v), size=samples), rng.integers(len(v), size=samples)
    unrelated = float(np.mean(np.sum(v[a] * v[b], axis=1)))
    multi = np.flatnonzero(corpus.doc_chunks > 1)
    docs = rng.choice(multi, size=min(samples, len(multi)))
    first = corpus.doc_first_chunk[docs]
    same_doc = float(np.mean(np.sum(v[first] * v[first + 1], axis=1)))
    by_topic: dict[int, list[int]] = {}
    for doc in rng.permutation(len(corpus.doc_topic))[: samples * 4]:
        by_topic.setdefault(int(corpus.doc_topic[doc]), []).append(int(corpus.doc_first_chunk[doc]))
    pairs = [(c[0], c[1]) for c in by_topic.values() if len(c) > 1][:samples]
    same_topic = float(np.mean([v[x] @ v[y] for x, y in pairs])) if pairs else None
    return {"unrelated": round(unrelated, 3), "same_topic_other_document": round(same_topic, 3) if same_topic else None,
            "same_document_neighbours": round(same_doc, 3)}


# --- loading ---------------------------------------------------------------------------------


GIN_INDEXES = ("chunk_search_vector_gin", "chunk_acl_groups_gin")
HNSW_NAMES = {"halfvec": "chunk_embedding_halfvec_hnsw", "vector": "chunk_embedding_hnsw"}


def log(message: str) -> None:
    """Progress on stderr (a long run is followed by tailing its log); stdout stays one JSON object."""
    print(f"{dt.datetime.now(dt.timezone.utc):%H:%M:%S} {message} (load {os.getloadavg()[0]:.1f})",
          file=sys.stderr, flush=True)


def hnsw_definition(args) -> str:
    """The chunks' HNSW index as the migrations define it (halfvec, migration 0008), or the float32
    one (0001) to compare, with the given m / ef_construction."""
    if args.dense_index == "halfvec":
        column, opclass = f"(embedding::halfvec({DIM}))", "halfvec_cosine_ops"
    else:
        column, opclass = "embedding", "vector_cosine_ops"
    return (f"CREATE INDEX {HNSW_NAMES[args.dense_index]} ON connectors_chunk USING hnsw ({column} {opclass}) "
            f"WITH (m = {int(args.m)}, ef_construction = {int(args.ef_construction)})")


def build_hnsw(conn, args) -> dict:
    """Drop whichever HNSW index the chunks have and build the asked one; time, size, notices."""
    conn.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
    conn.execute(f"SET max_parallel_maintenance_workers = {int(args.parallel_workers)}")
    for name in HNSW_NAMES.values():
        conn.execute(f'DROP INDEX IF EXISTS "{name}"')
    notices: list[str] = []
    conn.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary))
    definition = hnsw_definition(args)
    log(f"building {definition}")
    started = time.perf_counter()
    load_before = os.getloadavg()
    conn.execute(definition)
    build_s = time.perf_counter() - started
    size = conn.execute("SELECT pg_relation_size(%s::regclass)", [HNSW_NAMES[args.dense_index]]).fetchone()[0]
    log(f"HNSW built in {build_s:.0f} s, {size / 2**20:.0f} MiB")
    return {
        "definition": definition, "build_s": round(build_s, 1), "size_bytes": size,
        "size_gib": round(size / 2**30, 3), "maintenance_work_mem": args.maintenance_work_mem,
        "max_parallel_maintenance_workers": args.parallel_workers,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        # pgvector says so when the graph outgrew maintenance_work_mem (the build then slows down)
        "notices": notices,
    }


def relation_sizes(conn) -> dict:
    rows = conn.execute(
        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND (c.relname IN ('connectors_chunk', 'connectors_document') "
        "OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'connectors_chunk'::regclass))"
    ).fetchall()
    return {name: {"bytes": size, "mib": round(size / 2**20, 1)} for name, size in rows}


def load(corpus: Corpus, args) -> dict:
    """COPY documents and chunks in; search_vector is filled by a trigger in the same pass."""
    import psycopg
    from psycopg.types.json import Jsonb
    from pgvector.psycopg import register_vector
    from connectors.index_version import FIRST_VERSION

    from connectors.models import Connector
    from django.contrib.auth.models import Group

    timings = {}
    groups = {name: Group.objects.create(name=name) for name in [*GROUPS, "rare"]}
    kinds = ["folder", "postgres", "web", "upload", "mysql"]
    connectors = []
    for i in range(N_CONNECTORS):
        selective = i == corpus.selective_connector
        connectors.append(Connector.objects.create(
            name="Restricted archive" if selective else f"Source {i:02d}", kind=kinds[i % len(kinds)],
            is_public=not selective, config={},
        ))
        if selective:
            connectors[-1].groups.add(groups["rare"])
    connector_ids = [c.id for c in connectors]

    rng = np.random.default_rng(SEED + 2)
    doc_ids = [uuid.UUID(bytes=rng.bytes(16), version=4) for _ in range(len(corpus.doc_topic))]
    now = dt.datetime.now(dt.timezone.utc)
    ages = rng.integers(0, 3 * 365 * 24 * 3600, size=len(doc_ids))

    with psycopg.connect(args.database_url) as conn:
        register_vector(conn)
        conn.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
        conn.execute(f"SET max_parallel_maintenance_workers = {int(args.parallel_workers)}")
        definitions = dict(conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'connectors_chunk' AND indexname = ANY(%s)",
            [list(GIN_INDEXES) + list(HNSW_NAMES.values())],
        ).fetchall())
        for name in definitions:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("""
            CREATE FUNCTION bench_chunk_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                -- as connectors.search.bm25.chunk_search_vector: the document's title (A), then the text
                NEW.search_vector := setweight(to_tsvector('english'::regconfig, COALESCE(
                    (SELECT title FROM connectors_document WHERE id = NEW.document_id), '')), 'A')
                    || to_tsvector('english'::regconfig, COALESCE(NEW.text, ''));
                RETURN NEW;
            END $$
        """)
        conn.execute("CREATE TRIGGER bench_search_vector BEFORE INSERT ON connectors_chunk "
                     "FOR EACH ROW EXECUTE FUNCTION bench_chunk_search_vector()")
        conn.commit()

        log("copying documents")
        started = time.perf_counter()
        columns = ("id, connector_id, external_id, title, location, url, media_type, text, content_hash, metadata, "
                   "language, acl_public, acl_groups, acl_from_source, source_modified_at, index_status, index_error, "
                   "embedding_model, indexed_at, created_at, headings")
        with conn.cursor() as cur, cur.copy(f"COPY connectors_document ({columns}) FROM STDIN") as copy:
            for d, doc_id in enumerate(doc_ids):
                first, count = int(corpus.doc_first_chunk[d]), int(corpus.doc_chunks[d])
                text = "\n\n".join(corpus.chunk_texts[first:first + count])
                connector = int(corpus.doc_connector[d])
                path = f"{connectors[connector].kind}/{d:07d}"
                copy.write_row((
                    doc_id, connector_ids[connector], path, " ".join(text.split(" ", 7)[:6]).rstrip("."), path,
                    "", "text/markdown", text, hashlib.sha256(text.encode()).hexdigest(),
                    Jsonb({"topic": int(corpus.doc_topic[d])}), "english", bool(corpus.doc_public[d]),
                    corpus.doc_groups[d], bool(corpus.doc_groups[d]) and connector != corpus.selective_connector,
                    now - dt.timedelta(seconds=int(ages[d])), "indexed", "", "synthetic-clustered-384", now, now,
                    Jsonb([]),
                ))
        conn.commit()
        timings["copy_documents_s"] = time.perf_counter() - started
        log("copying chunks (search_vector by trigger)")

        started = time.perf_counter()
        columns = ("id, ordinal, text, start_char, end_char, token_count, embedding, acl_public, acl_groups, "
                   "connector_id, document_id, section, index_version")
        statement = f"COPY connectors_chunk ({columns}) FROM STDIN WITH (FORMAT BINARY)"
        with conn.cursor() as cur, cur.copy(statement) as copy:
            copy.set_types(
                ["int8", "int4", "text", "int4", "int4", "int4", "vector", "bool", "varchar[]", "uuid", "uuid", "text",
                 "int4"]
            )
            offset = 0
            for c, text in enumerate(corpus.chunk_texts):
                d = int(corpus.chunk_doc[c])
                ordinal = int(corpus.chunk_ordinal[c])
                if ordinal == 0:
                    offset = 0
                copy.write_row((
                    c + 1, ordinal, text, offset, offset + len(text), round(len(text.split()) * 1.3),
                    corpus.vectors[c], bool(corpus.doc_public[d]), corpus.doc_groups[d],
                    connector_ids[int(corpus.doc_connector[d])], doc_ids[d], "", FIRST_VERSION,
                ))
                offset += len(text) + 2
        conn.execute("DROP TRIGGER bench_search_vector ON connectors_chunk")
        conn.execute("DROP FUNCTION bench_chunk_search_vector()")
        conn.execute("SELECT setval(pg_get_serial_sequence('connectors_chunk', 'id'), %s)", [len(corpus.chunk_texts)])
        conn.commit()
        timings["copy_chunks_with_tsvector_s"] = time.perf_counter() - started

        conn.autocommit = True
        for name in GIN_INDEXES:
            log(f"building {name}")
            started = time.perf_counter()
            conn.execute(definitions[name])
            timings[f"create_{name}_s"] = time.perf_counter() - started
        hnsw = build_hnsw(conn, args)
        timings["create_chunk_embedding_hnsw_s"] = hnsw["build_s"]
        log("vacuum analyze")
        started = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) connectors_document")
        conn.execute("VACUUM (ANALYZE) connectors_chunk")
        timings["vacuum_analyze_s"] = time.perf_counter() - started
        sizes = relation_sizes(conn)
    return {"timings": {key: round(value, 2) for key, value in timings.items()}, "sizes": sizes, "hnsw": hnsw,
            "index_definitions": definitions, "connector_ids": connector_ids}


def reloaded(corpus: Corpus, args) -> dict:
    """What `load` returns, for a database it filled earlier (--reuse)."""
    from django.db import connection

    from connectors.models import Chunk, Connector

    if Chunk.objects.count() != len(corpus.vectors):
        raise SystemExit("--reuse: the database does not hold this --chunks corpus; run with --keep first")
    names = ["Restricted archive" if i == corpus.selective_connector else f"Source {i:02d}"
             for i in range(N_CONNECTORS)]
    ids = dict(Connector.objects.values_list("name", "id"))
    import psycopg

    with psycopg.connect(args.database_url, autocommit=True) as conn:
        hnsw = None
        if args.rebuild_hnsw:
            hnsw = build_hnsw(conn, args)
            conn.execute("ANALYZE connectors_chunk")
        sizes = relation_sizes(conn)
    return {"timings": {"reused_database": True}, "sizes": sizes, "hnsw": hnsw, "index_definitions": {},
            "connector_ids": [ids[name] for name in names]}


# --- measurement -----------------------------------------------------------------------------


def percentiles(samples_s: list[float]) -> dict:
    ms = np.array(samples_s) * 1000
    return {"p50": round(float(np.percentile(ms, 50)), 2), "p95": round(float(np.percentile(ms, 95)), 2),
            "mean": round(float(ms.mean()), 2), "max": round(float(ms.max()), 2), "n": len(ms)}


def backends_cpu_s() -> float:
    """Processor seconds used so far by this database's server processes (this machine's /proc).

    On a busy machine a query's wall time is mostly waiting for a core; its processor time,
    here and in PostgreSQL, is what it costs, and what it would take on an idle machine."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        pids = [row[0] for row in cursor.fetchall()]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # another machine's server, or the process ended
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def capture_statements(fn) -> list[tuple[str, tuple]]:
    """The SET and SELECT statements a selector sends, with their parameters."""
    from django.db import connection

    statements = []

    def wrapper(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(("SET", "SELECT")):
            statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        fn()
    return statements


def explain(statements: list[tuple[str, tuple]], extra_settings: tuple[str, ...] = (), marker: str = "") -> dict:
    """EXPLAIN ANALYZE of the first SELECT (containing `marker`), replayed with the selector's own SET LOCALs."""
    from django.db import connection, transaction

    from connectors.search.local_settings import settings_and_query

    plan = None
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in extra_settings:
            cursor.execute(sql)
        for sent, params in statements:
            local_settings, sql = settings_and_query(sent)  # a search sends its SETs with its query
            for statement in local_settings:
                cursor.execute(statement)
            if sql.lstrip().upper().startswith("SET"):
                cursor.execute(sql, params)
            elif marker in sql:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
                plan = cursor.fetchone()[0]
                break
        transaction.set_rollback(True)
    if plan is None:
        return {"execution_ms": None, "planning_ms": None, "plan": []}
    if isinstance(plan, str):
        plan = json.loads(plan)
    nodes = []

    def walk(node, depth=0):
        label = node["Node Type"]
        if "Index Name" in node:
            label += f" using {node['Index Name']}"
        if "Relation Name" in node and "Index Name" not in node:
            label += f" on {node['Relation Name']}"
        label += f" (rows={node.get('Actual Rows')}, ms={node.get('Actual Total Time')})"
        nodes.append("  " * depth + label)
        for child in node.get("Plans", []):
            walk(child, depth + 1)

    walk(plan[0]["Plan"])
    return {"execution_ms": round(plan[0]["Execution Time"], 2), "planning_ms": round(plan[0]["Planning Time"], 2),
            "plan": nodes}


def exact_dense(embedding, groups, k, filters) -> list[int]:
    """The exact answer: the same visible chunks (ACL, filter, live version) ranked by the cosine
    distance of their float32 vectors, `distance + 0` so that no index can give the order (the
    product's index is on halfvec: this measures the approximation and the half precision together)."""
    from django.db.models import ExpressionWrapper, F, FloatField, Value
    from pgvector.django import CosineDistance

    from connectors.search.filters import visible_chunks

    return list(
        visible_chunks(groups, filters)
        .annotate(distance=CosineDistance("embedding", embedding))
        .order_by(ExpressionWrapper(F("distance") + Value(0.0), output_field=FloatField()))
        .values_list("id", flat=True)[:k]
    )


def selective_probe(args, corpus: Corpus, loaded: dict, n: int = 20) -> dict:
    """The selective reader's dense query (the product's SQL, k = RAG_CANDIDATES): the exact scan
    of the connector's few chunks the product makes now, the HNSW walk it made before
    (RAG_EXACT_SCAN_MAX_CHUNKS=0) as PostgreSQL plans it, and that walk with bitmap and sequential
    scans off, which leaves the HNSW index with pgvector's iterative scan: execution time (EXPLAIN
    ANALYZE) and recall@10 of each against the exact float32 ranking, on the first n queries."""
    from django.conf import settings

    from connectors.search import SearchFilters
    from connectors.search.dense import chunk_ids_dense

    queries = make_queries(corpus, n)
    filters = SearchFilters(connector_ids=(loaded["connector_ids"][corpus.selective_connector],))
    pool = max(K, settings.RAG_CANDIDATES)
    # no sort: only the HNSW index gives the order
    forced = ("SET LOCAL enable_sort = off", "SET LOCAL enable_bitmapscan = off", "SET LOCAL enable_seqscan = off")
    out = {}
    for name, reader, extra in (("exact_scan", "selective", ()), ("as_planned", "selective_walk", ()),
                                ("hnsw_iterative_forced", "selective_walk", forced)):
        times, recalls, plans = [], [], set()
        for q in queries:
            with reader_settings(reader):
                statements = capture_statements(
                    lambda: chunk_ids_dense(embedding=q.embedding, groups=READER_GROUPS, k=pool, filters=filters))
            sql, params = next((sql, params) for sql, params in statements if "<=>" in sql)
            plan = explain([*[(s, p) for s, p in statements if s.lstrip().upper().startswith("SET")], (sql, params)],
                           extra, marker="<=>")
            times.append(plan["execution_ms"] / 1000)
            plans.add(" / ".join(line.strip().split(" (")[0] for line in plan["plan"]))
            found = explain_ids(statements, extra)
            exact = exact_dense(q.embedding, READER_GROUPS, K, filters)
            recalls.append(len(set(found[:K]) & set(exact)) / K)
        out[name] = {"execution_ms": percentiles(times), "recall_at_10": round(float(np.mean(recalls)), 4),
                     "plans": sorted(plans)}
    return out


def threshold_probe(args, corpus: Corpus, loaded: dict, n: int = 40) -> dict:
    """What RAG_EXACT_SCAN_MAX_CHUNKS should be: the dense call (chunks_dense_scored, k =
    RAG_CANDIDATES, the reader's ACL) on connector filters of growing size, ranked exactly and by
    the HNSW walk, each timed end to end (median and p95 of n queries, PostgreSQL processor time
    per query) with the walk's recall@10 against the exact ranking; and the product's count of a
    filter's chunks (up to the limit plus one) that picks between them."""
    from django.conf import settings
    from django.test import override_settings

    from connectors.search import SearchFilters
    from connectors.search.dense import chunks_dense_scored
    from connectors.search.filters import few_enough_to_scan

    queries = make_queries(corpus, n)
    pool = max(K, settings.RAG_CANDIDATES)
    chunks_of = np.bincount(corpus.doc_connector, weights=corpus.doc_chunks, minlength=N_CONNECTORS).astype(int)
    regular = [i for i in np.argsort(chunks_of) if i != corpus.selective_connector]
    sets = [[corpus.selective_connector], regular[:1], regular[:2], regular[:4]]
    out = {"limit_now": settings.RAG_EXACT_SCAN_MAX_CHUNKS, "queries": n, "sets": []}
    for members in sets:
        filters = SearchFilters(connector_ids=tuple(loaded["connector_ids"][i] for i in members))
        row = {"connectors": len(members), "chunks": int(chunks_of[members].sum())}
        ranked = {}
        for path, limit in (("exact", 10_000_000), ("walk", 0)):
            with override_settings(RAG_EXACT_SCAN_MAX_CHUNKS=limit):
                for q in queries[:3]:  # warm the pages this path reads
                    chunks_dense_scored(embedding=q.embedding, groups=READER_GROUPS, k=pool, filters=filters)
                samples, server, found = [], backends_cpu_s(), []
                for q in queries:
                    started = time.perf_counter()
                    found.append([cid for cid, _ in chunks_dense_scored(
                        embedding=q.embedding, groups=READER_GROUPS, k=pool, filters=filters)][:K])
                    samples.append(time.perf_counter() - started)
                server = backends_cpu_s() - server
            ranked[path] = found
            row[path] = {"ms": percentiles(samples), "postgres_cpu_ms": round(1000 * server / n, 2)}
        row["walk"]["recall_at_10"] = round(float(np.mean(
            [len(set(walk) & set(exact)) / K for walk, exact in zip(ranked["walk"], ranked["exact"])])), 4)
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            few_enough_to_scan(filters)
            samples.append(time.perf_counter() - started)
        row["count_ms"] = percentiles(samples)
        out["sets"].append(row)
        log(f"threshold probe: {row['chunks']} chunks, exact p50 {row['exact']['ms']['p50']} ms, "
            f"walk p50 {row['walk']['ms']['p50']} ms")
    return out


def recall_probe(args, corpus: Corpus, loaded: dict) -> dict:
    """recall@10 of the product's dense call (k = RAG_CANDIDATES, its top 10) at several
    hnsw.ef_search values (RAG_EF_SEARCH), for both readers, against an exact float32 ranking
    done in numpy over the ids the product's visible_chunks() returns: seconds instead of a
    sequential scan per query at a million chunks."""
    from django.conf import settings

    from connectors.search import NO_FILTERS, SearchFilters
    from connectors.search.dense import chunk_ids_dense
    from connectors.search.filters import visible_chunks

    queries = make_queries(corpus, args.queries)[:RECALL_QUERIES]
    selective = SearchFilters(connector_ids=(loaded["connector_ids"][corpus.selective_connector],))
    pool = max(K, settings.RAG_CANDIDATES)
    matrix = np.array([q.embedding for q in queries], dtype=np.float32).T
    out = {}
    for reader, filters in (("broad", NO_FILTERS), ("selective", selective)):
        ids = np.fromiter(visible_chunks(READER_GROUPS, filters).values_list("id", flat=True), dtype=np.int64)
        scores = corpus.vectors[ids - 1] @ matrix  # chunk ids are row numbers + 1
        exact = [ids[np.argsort(-scores[:, i])[:K]].tolist() for i in range(len(queries))]
        for ef in args.recall_probe:
            settings.RAG_EF_SEARCH = ef
            started, recalls = time.perf_counter(), []
            for q, truth in zip(queries, exact):
                found = chunk_ids_dense(embedding=q.embedding, groups=READER_GROUPS, k=pool, filters=filters)[:K]
                recalls.append(len(set(found) & set(truth)) / K)
            out.setdefault(reader, {})[f"ef_search_{ef}"] = {
                "recall_at_10": round(float(np.mean(recalls)), 4), "recall_at_10_min": round(float(min(recalls)), 2),
                "queries_below_0.5": sum(r < 0.5 for r in recalls),
                "dense_call_mean_ms": round(1000 * (time.perf_counter() - started) / len(queries), 1),
            }
    return out


def explain_ids(statements, extra_settings) -> list[int]:
    """The ids the product's dense SQL returns under `extra_settings`."""
    from django.db import connection, transaction

    from connectors.search.local_settings import settings_and_query

    with transaction.atomic(), connection.cursor() as cursor:
        for sql in extra_settings:
            cursor.execute(sql)
        for sent, params in statements:
            local_settings, sql = settings_and_query(sent)  # a search sends its SETs with its query
            for statement in local_settings:
                cursor.execute(statement)
            if "<=>" in sql:
                cursor.execute(sql, params)
                rows = cursor.fetchall()
                break
        transaction.set_rollback(True)
    return [row[0] for row in sorted(rows, key=lambda row: row[1])]


def reader_settings(reader: str):
    """The product's settings for a reader: `selective_walk` has the exact scan of few chunks off."""
    from contextlib import nullcontext

    from django.test import override_settings

    return override_settings(RAG_EXACT_SCAN_MAX_CHUNKS=0) if reader == "selective_walk" else nullcontext()


def measure(args, corpus: Corpus, loaded: dict) -> dict:
    from django.conf import settings
    from django.db import connection

    from connectors.models import Chunk
    from connectors.selectors import acl_filter
    from connectors.search import NO_FILTERS, SearchFilters, chunks_search
    from connectors.search.dense import chunk_ids_dense, halfvec_index, pgvector_version
    from connectors.search.fulltext import chunk_ids_fulltext, fulltext_query

    queries = make_queries(corpus, args.queries)
    selective = SearchFilters(connector_ids=(loaded["connector_ids"][corpus.selective_connector],))
    # selective_walk: the selective reader with the exact scan of few chunks off, the HNSW walk
    # every search made before RAG_EXACT_SCAN_MAX_CHUNKS (a baseline measured in the same run)
    readers = {"broad": NO_FILTERS, "selective": selective, "selective_walk": selective}
    pool = max(K, settings.RAG_CANDIDATES)

    visible = {name: filters.apply(Chunk.objects.filter(acl_filter(READER_GROUPS))).count()
               for name, filters in readers.items()}

    def run(reader, mode, q):
        with reader_settings(reader):
            return chunks_search(embedding=q.embedding, text=q.text, groups=READER_GROUPS, k=K, mode=mode,
                                 filters=readers[reader])

    # warm-up: every query once through the hybrid path of every reader
    log(f"warm-up: {len(queries)} queries x {len(readers)} readers")
    started = time.perf_counter()
    for q in queries:
        for reader in readers:
            run(reader, "hybrid", q)
    warmup_s = time.perf_counter() - started

    log("timing")
    load_before = os.getloadavg()
    cpu_before = time.process_time()
    latency, counts, cpu_ms = {}, {}, {}
    for mode in ("hybrid", "dense", "fulltext"):
        for reader in readers:
            if mode == "fulltext" and reader == "selective_walk":
                continue  # the same full-text query as the selective reader's
            samples, sizes = [], []
            client, server = time.process_time(), backends_cpu_s()
            for q in queries:
                started = time.perf_counter()
                results = run(reader, mode, q)
                samples.append(time.perf_counter() - started)
                sizes.append(len(results))
            client, server = time.process_time() - client, backends_cpu_s() - server
            latency[f"{mode}_{reader}"] = percentiles(samples)
            counts[f"{mode}_{reader}"] = sizes
            cpu_ms[f"{mode}_{reader}"] = {"client": round(1000 * client / len(queries), 2),
                                          "postgres": round(1000 * server / len(queries), 2)}
    load_after = os.getloadavg()
    timing_cpu_s = time.process_time() - cpu_before
    log(f"recall against the exact float32 scan ({RECALL_QUERIES} queries per reader)")

    # recall of the HNSW side against an exact scan, same SQL, same ACL and filter
    recall = {}
    exact_times = []
    for reader, filters in readers.items():
        at_k, at_pool, at_k_of_pool = [], [], []
        for q in queries[:RECALL_QUERIES]:
            with reader_settings(reader):
                approximate = chunk_ids_dense(embedding=q.embedding, groups=READER_GROUPS, k=K, filters=filters)
                approximate_pool = chunk_ids_dense(embedding=q.embedding, groups=READER_GROUPS, k=pool,
                                                   filters=filters)
            started = time.perf_counter()
            exact = exact_dense(q.embedding, READER_GROUPS, pool, filters)
            if reader == "broad":
                exact_times.append(time.perf_counter() - started)
            if len(exact) >= K:
                at_k.append(len(set(approximate) & set(exact[:K])) / K)
                at_k_of_pool.append(len(set(approximate_pool[:K]) & set(exact[:K])) / K)
            if len(exact) >= pool:
                at_pool.append(len(set(approximate_pool) & set(exact)) / pool)
        recall[reader] = {
            "recall_at_10": round(float(np.mean(at_k)), 4),
            "recall_at_10_min": round(float(np.min(at_k)), 2),
            f"recall_at_{pool}": round(float(np.mean(at_pool)), 4) if at_pool else None,
            # what chunks_search fuses: the dense side is asked for `pool` candidates, not k
            f"recall_at_10_of_the_k{pool}_call": round(float(np.mean(at_k_of_pool)), 4),
            "queries": len(at_k),
        }

    # plans of the product's queries (first query), and proof that the reference is a sequential scan
    q = queries[0]
    plans = {}
    for reader, filters in readers.items():
        with reader_settings(reader):
            dense_sql = capture_statements(
                lambda: chunk_ids_dense(embedding=q.embedding, groups=READER_GROUPS, k=pool, filters=filters))
        plans[f"dense_{reader}"] = explain(dense_sql, marker="<=>")
        plans[f"exact_reference_{reader}"] = explain(capture_statements(
            lambda: exact_dense(q.embedding, READER_GROUPS, pool, filters)), marker="<=>")
        # the BM25 scoring query (the first stage); parsing and statistics are small queries before it
        plans[f"fulltext_{reader}"] = explain(capture_statements(
            lambda: chunk_ids_fulltext(text=q.text, groups=READER_GROUPS, k=pool, filters=filters)),
            marker="ts_filter(")
    for reader in readers:
        uses_hnsw = any("_hnsw" in line for line in plans[f"exact_reference_{reader}"]["plan"])
        if uses_hnsw:
            raise RuntimeError(f"the exact reference for {reader} used the HNSW index")
    plans["query_text_of_these_plans"] = q.text

    # how selective the full-text queries are (OR of the words, as the product builds them)
    match_fraction = []
    log("full-text selectivity")
    with connection.cursor() as cursor:
        for q in queries[:FULLTEXT_FRACTION_QUERIES]:
            tsquery = fulltext_query(q.text)
            cursor.execute(
                f"SELECT count(*) FROM connectors_chunk WHERE search_vector @@ {tsquery.sql}", tsquery.params
            )
            match_fraction.append(cursor.fetchone()[0] / len(corpus.vectors))
        cursor.execute(
            "SELECT array_agg(ndoc ORDER BY ndoc DESC) FROM ts_stat("
            "'SELECT search_vector FROM connectors_chunk TABLESAMPLE SYSTEM (5) REPEATABLE (1)')"
        )
        document_frequencies = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM connectors_chunk TABLESAMPLE SYSTEM (5) REPEATABLE (1)")
        sampled = cursor.fetchone()[0]
        lexeme_df = {f"rank_{rank}": round(document_frequencies[rank - 1] / sampled, 3)
                     for rank in (1, 10, 50, 100, 500) if rank <= len(document_frequencies)}
        settings_rows = {}
        for name in ("hnsw.max_scan_tuples", "shared_buffers", "work_mem",
                     "max_parallel_workers_per_gather", "jit", "server_version"):
            cursor.execute(f"SHOW {name}")
            settings_rows[name] = cursor.fetchone()[0]

    selective_hybrid = counts["hybrid_selective"]
    return {
        "latency_ms": latency,
        "cpu_ms_per_query": cpu_ms,
        "recall": recall,
        "exact_scan_ms_broad": percentiles(exact_times),
        "selective_results": {
            "visible_chunks": visible["selective"],
            "hybrid_min": min(selective_hybrid),
            "hybrid_median": float(np.median(selective_hybrid)),
            "hybrid_queries_with_fewer_than_k": sum(1 for n in selective_hybrid if n < K),
            "dense_min": min(counts["dense_selective"]),
            "fulltext_median": float(np.median(counts["fulltext_selective"])),
        },
        "broad_results_min": {mode: min(counts[f"{mode}_broad"]) for mode in ("hybrid", "dense", "fulltext")},
        "visible_chunks": visible,
        "lexeme_document_frequency": lexeme_df,
        "fulltext_match_fraction": {
            "p50": round(float(np.percentile(match_fraction, 50)), 4),
            "p95": round(float(np.percentile(match_fraction, 95)), 4),
            "max": round(float(np.max(match_fraction)), 4),
        },
        "queries": {"count": len(queries), "examples": [q.text for q in queries[:5]],
                    "kinds": {"chunk": sum(q.kind == "chunk" for q in queries),
                              "topic": sum(q.kind == "topic" for q in queries)}},
        "warmup_s": round(warmup_s, 2),
        "plans": plans,
        "machine": {
            "pgvector_version": ".".join(map(str, pgvector_version())),
            "ef_search": max(settings.RAG_EF_SEARCH, pool),
            "iterative_scan": "relaxed_order (SET LOCAL by chunk_ids_dense)" if pgvector_version() >= (0, 8) else "off",
            "rag_candidates": pool,
            "exact_scan_max_chunks": settings.RAG_EXACT_SCAN_MAX_CHUNKS,
            "dense_index": "halfvec" if halfvec_index() else "vector",
            "k": K,
            "cpus": os.cpu_count(),
            "loadavg_before_timing": [round(x, 2) for x in load_before],
            "loadavg_after_timing": [round(x, 2) for x in load_after],
            "timing_process_cpu_s": round(timing_cpu_s, 1),
            **settings_rows,
        },
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_retrieval")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database for experiments")
    parser.add_argument("--reuse", action="store_true",
                        help="measure again on a database kept by --keep (same --chunks); implies --keep")
    index = parser.add_argument_group("the HNSW index (defaults: the product's, migration 0008)")
    index.add_argument("--dense-index", choices=sorted(HNSW_NAMES), default="halfvec",
                       help="halfvec: on embedding::halfvec (the product's); vector: on the float32 column")
    index.add_argument("--m", type=int, default=16)
    index.add_argument("--ef-construction", type=int, default=64)
    index.add_argument("--maintenance-work-mem", default="2GB",
                       help="memory for the build: the graph must fit (about 1.3 GB per million halfvec chunks)")
    index.add_argument("--parallel-workers", type=int, default=2, help="max_parallel_maintenance_workers")
    index.add_argument("--rebuild-hnsw", action="store_true", help="with --reuse: build the HNSW index again")
    parser.add_argument("--selective-probe", action="store_true",
                        help="only compare the selective reader's dense query as planned and forced onto the HNSW "
                             "index (iterative scan): time and recall")
    parser.add_argument("--threshold-probe", action="store_true",
                        help="only time the dense call ranked exactly and by the HNSW walk on connector filters of "
                             "growing size (what RAG_EXACT_SCAN_MAX_CHUNKS should be)")
    parser.add_argument("--recall-probe", type=lambda text: [int(x) for x in text.split(",")], default=[],
                        metavar="EF,EF", help="only measure the dense call's recall at these hnsw.ef_search values")
    args = parser.parse_args(argv)
    if args.chunks < 1000:
        parser.error("--chunks must be at least 1000")
    args.keep = args.keep or args.reuse

    started = time.perf_counter()
    if not args.reuse:
        create_database(args.database_url)
    os.environ.update(bench_environment(args.database_url))
    import django

    django.setup()
    try:
        log(f"generating {args.chunks} chunks")
        generated = time.perf_counter()
        corpus = synthesize(args.chunks)
        generate_s = time.perf_counter() - generated
        loaded = reloaded(corpus, args) if args.reuse else load(corpus, args)
        from connectors.search.dense import halfvec_index

        halfvec_index.cache_clear()  # the index may have changed under this process
        if args.selective_probe or args.recall_probe or args.threshold_probe:
            report = {"benchmark": "retrieval-probe", "chunks": args.chunks, "hnsw": loaded["hnsw"],
                      "loadavg_before": [round(x, 2) for x in os.getloadavg()]}
            if args.recall_probe:
                log(f"recall probe, ef_search {args.recall_probe}")
                report["recall_by_ef_search"] = recall_probe(args, corpus, loaded)
            if args.selective_probe:
                log("selective probe")
                report["selective_dense"] = selective_probe(args, corpus, loaded)
            if args.threshold_probe:
                log("threshold probe")
                report["exact_scan_threshold"] = threshold_probe(args, corpus, loaded)
            report["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
            print(json.dumps(report))
            return report
        results = measure(args, corpus, loaded)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop_database(args.database_url)

    # The product's HNSW side: chunks_search asks chunk_ids_dense for RAG_CANDIDATES (50)
    # neighbours and fuses the best of them, so its recall@10 is that call's top 10. (A direct
    # k=10 call, which the product never makes, plans differently and is reported beside it.)
    product_recall = {reader: next(v for key, v in values.items() if key.startswith("recall_at_10_of_the_k"))
                      for reader, values in results["recall"].items()}
    rare_chunks = int(corpus.doc_chunks[corpus.doc_connector == corpus.selective_connector].sum())
    public_chunks = int(corpus.doc_chunks[corpus.doc_public].sum())
    latency = results["latency_ms"]
    report = {
        "benchmark": "retrieval",
        "targets": {
            "recall_at_10_min_target": 0.95,
            "recall_at_10_broad": product_recall["broad"],
            "recall_at_10_selective": product_recall["selective"],
            "recall_at_10_broad_ok": product_recall["broad"] >= 0.95,
            "recall_at_10_selective_ok": product_recall["selective"] >= 0.95,
            "hybrid_p95_ms_target": 50,
            "hybrid_broad_p95_ok": latency["hybrid_broad"]["p95"] < 50,
            "hybrid_selective_p95_ok": latency["hybrid_selective"]["p95"] < 50,
            "hybrid_selective_p95_ratio_to_walk": round(
                latency["hybrid_selective"]["p95"] / latency["hybrid_selective_walk"]["p95"], 3),
        },
        **{key: results[key] for key in ("latency_ms", "cpu_ms_per_query", "recall", "exact_scan_ms_broad", "selective_results")},
        "data": {
            "connectors": N_CONNECTORS,
            "documents": len(corpus.doc_topic),
            "chunks": len(corpus.vectors),
            "dimensions": DIM,
            "topics": corpus.n_topics,
            "public_chunks": public_chunks,
            "selective_connector_chunks": rare_chunks,
            "visible_chunks": results["visible_chunks"],
            "cosine_profile": cosine_profile(corpus, np.random.default_rng(SEED + 3)),
            "lexeme_document_frequency": results["lexeme_document_frequency"],
            "fulltext_match_fraction": results["fulltext_match_fraction"],
            "sizes": loaded["sizes"],
            "hnsw": loaded["hnsw"],
        },
        "readers": {
            "broad": f"groups={READER_GROUPS}: public chunks plus those shared with g01 or rare, no filter",
            "selective": "same groups, SearchFilters(connector_ids=(the 'Restricted archive' connector,)): "
                         "about 1% of the chunks, none public. The ACL is `acl_public OR acl_groups && groups`, "
                         "so an ACL alone cannot narrow a reader below the public 70%; a connector filter can. "
                         "Its connector holds fewer than RAG_EXACT_SCAN_MAX_CHUNKS chunks: ranked exactly.",
            "selective_walk": "the selective reader with RAG_EXACT_SCAN_MAX_CHUNKS=0: the filtered HNSW walk every "
                              "search made before (a baseline in the same run; its full text is the selective one's)",
        },
        "method": "each chunks_search(..., k=10) call timed end to end with perf_counter (ORM, 2-3 SQL queries, "
                  "in_bulk of the 10 chunks with their documents), after a warm-up pass; recall compares "
                  "chunk_ids_dense (HNSW, product settings) to an exact ranking of the same visible chunks by "
                  "their float32 vectors (an order no index serves: the approximation and halfvec together).",
        "queries": results["queries"],
        "load": {"generate_s": round(generate_s, 2), **loaded["timings"]},
        "warmup_s": results["warmup_s"],
        "plans": results["plans"],
        "machine": results["machine"],
        "total_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
