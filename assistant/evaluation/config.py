"""What a run ran with: the model, the embedding model, the search settings, the prompts'
version and the code's commit, so two runs can be told apart and a regression traced."""

from __future__ import annotations

import hashlib
import os
import subprocess
from functools import lru_cache

from django.conf import settings

from assistant.chat.agent_answer import TOOLS_NOTE
from assistant.evaluation.judge import RUBRIC
from assistant.rag.evaluation.corpus import index_settings
from assistant.rag.prompts import NO_SOURCES_NOTE, SYSTEM_PROMPT

_COMMIT_VARIABLES = ("GIT_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA", "SOURCE_COMMIT")


def prompts_version() -> str:
    """A short hash of every prompt text the answers and the judge use."""
    text = "\n\x00".join((SYSTEM_PROMPT, NO_SOURCES_NOTE, TOOLS_NOTE, RUBRIC))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@lru_cache(maxsize=1)
def git_commit() -> str:
    for name in _COMMIT_VARIABLES:
        if os.environ.get(name, "").strip():
            return os.environ[name].strip()[:40]
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=settings.BASE_DIR, capture_output=True, text=True,
                              timeout=3, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()[:40] if done.returncode == 0 else ""


def config_snapshot(*, answered_by=None, overrides: dict | None = None, profile: dict | None = None) -> dict:
    """The configuration a run starts with (settings already overridden for it); `profile`: the
    name and settings of the settings profile it was made with."""
    return {
        "model": (answered_by.model_name if answered_by and answered_by.model_name else settings.LLM_MODEL),
        "llm_base_url": settings.LLM_BASE_URL,
        "llm_tools": settings.LLM_TOOLS,
        "temperature": settings.LLM_TEMPERATURE,
        "max_tokens": settings.LLM_MAX_TOKENS,
        "embedding_backend": settings.EMBEDDING_BACKEND,
        "search": {
            **index_settings(),
            "mode": settings.RAG_SEARCH_MODE, "top_k": settings.RAG_TOP_K, "candidates": settings.RAG_CANDIDATES,
            "fusion": settings.RAG_FUSION,
            "context_tokens": settings.RAG_CONTEXT_TOKENS, "neighbour_chunks": settings.RAG_NEIGHBOUR_CHUNKS,
            "rerank_model": settings.RAG_RERANK_MODEL if settings.RAG_RERANK_URL else "",
        },
        "embedding_model": settings.EMBEDDING_MODEL,
        "prompts_version": prompts_version(),
        "commit": git_commit(),
        "answered_by": answered_by.name if answered_by else "",
        "profile": profile or None,
        "overrides": {k: v if isinstance(v, (int, float, str, bool, list, type(None))) else str(v)
                      for k, v in (overrides or {}).items()},
    }
