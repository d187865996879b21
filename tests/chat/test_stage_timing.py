"""Each answer's stages before its first token, logged for operators and bench/chat.py
(connectors/stage_timing.py; LOG_DEBUG_LOGGERS=connectors.stage_timing)."""

from __future__ import annotations

import json
import logging

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from assistant.accounts.tokens import api_token_create
from assistant.chat.openai_api import MODEL_ID
from tests.chat.fake_llm import SECRET, index_kitchen_and_vault, serve_fake_llm

QUESTION = "What is the server room vault code?"


@pytest.fixture
def fake_llm(settings):
    yield from serve_fake_llm(settings)


def _stream(user) -> str:
    secret = api_token_create(user=user, name="test")[1]

    async def run():
        body = {"model": MODEL_ID, "messages": [{"role": "user", "content": QUESTION}], "stream": True}
        response = await AsyncClient().post("/v1/chat/completions", json.dumps(body), content_type="application/json",
                                            headers={"Authorization": f"Bearer {secret}"})
        return b"".join([c async for c in response.streaming_content]).decode()

    return async_to_sync(run)()


class _Kept(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def stage_log():
    """`stage_log(level)`: the records of connectors.stage_timing at `level`, kept by a handler
    of its own (a sync in the test may re-run Django's logging setup, which drops caplog's)."""
    logger, kept, before = logging.getLogger("connectors.stage_timing"), _Kept(), None

    def start(level):
        nonlocal before
        before = logger.level
        logger.setLevel(level)
        logger.addHandler(kept)
        return kept.records

    yield start
    logger.removeHandler(kept)
    if before is not None:
        logger.setLevel(before)


def _traces(records) -> list[dict]:
    return [json.loads(r.getMessage().split(" ", 1)[1]) for r in records
            if r.getMessage().startswith("answer-stages ")]


@pytest.mark.django_db(transaction=True)
def test_an_answer_logs_where_its_time_went_before_the_first_token(tmp_path, engineering, owner, fake_llm, stage_log):
    index_kitchen_and_vault(tmp_path, engineering)
    records = stage_log(logging.DEBUG)
    text = _stream(owner)
    assert SECRET in text  # answered as usual

    [trace] = _traces(records)
    completion_id = json.loads(text.split("\n\n")[0][6:])["id"]
    assert completion_id == "chatcmpl-" + trace["answer"].replace("-", "")
    stages = list(trace["stages_ms"])
    # The request's path, in the order it runs, up to the first token written to the client.
    for earlier, later in zip(
        ["middleware", "auth", "conversation_create", "first_write", "claim", "conversation_load", "setup_assistant",
         "embedding", "dense_search", "fusion", "hits_load", "context", "prompt", "model"],
        ["auth", "conversation_create", "first_write", "claim", "conversation_load", "setup_assistant", "embedding",
         "dense_search", "fusion", "hits_load", "context", "prompt", "model", "first_token_write"],
    ):
        assert stages.index(earlier) < stages.index(later)
    assert stages[-1] == "first_token_write"
    assert "fulltext_search" in trace["beside_ms"] or "fulltext_search" in stages  # on its side connection
    assert abs(sum(trace["stages_ms"].values()) - trace["total_ms"]) < 1.0  # the stages add up
    assert trace["end"] > trace["start"] and trace["cpu_ms"] > 0


@pytest.mark.django_db(transaction=True)
def test_nothing_is_logged_unless_the_logger_is_on(tmp_path, engineering, owner, fake_llm, stage_log):
    index_kitchen_and_vault(tmp_path, engineering)
    records = stage_log(logging.INFO)
    assert SECRET in _stream(owner)
    assert records == []
