"""Answering a question: retrieve under the user's ACL, prompt the model, stream
tokens, then save the answer with the citations that point to given passages."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from functools import lru_cache

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from assistant.agent.loop import AgentRun
from assistant.chat.agent_answer import agent_events, agent_run_start
from assistant.chat.attachments import attachment_passages
from assistant.chat.models import Message
from assistant.chat.selectors import (
    answer_html_shown, citations_shown, question_and_history, steps_and_sources_shown,
)
from assistant.chat.titles import needs_title, title_generate
from assistant.rag.citations import finalize_answer, render_partial_html
from assistant.rag.context import context_window, context_window_cached, plan_budget
from assistant.chat.failures import error_event
from assistant.chat.answer_setup import AnswerSetup, answer_setup
from assistant.chat.model_stream import answer_stream
from assistant.rag.prompts import build_messages
from assistant.rag.retrieval import Passage, embed_query, retrieve
from assistant.rag.sources import sources_record
from connectors.search import NO_FILTERS, SearchFilters
from connectors.stage_timing import lap, trace_log
from inference.chat_client import ChatClient, ModelServerError

STOP_CHECK_SECONDS = 0.3
logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _embedder_thread() -> ThreadPoolExecutor:
    """Where questions are embedded. The model in this process uses every core for one question,
    so concurrent answers take turns on one thread instead of oversubscribing the CPU; an
    embedding server is asked by several threads at once."""
    workers = 8 if settings.EMBEDDING_BACKEND == "http" else 1
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed-query")


@lru_cache(maxsize=1)
def get_chat_client() -> ChatClient:
    return ChatClient(
        base_url=settings.LLM_BASE_URL,
        model=settings.LLM_MODEL,
        api_key=settings.LLM_API_KEY,
        timeout=settings.LLM_TIMEOUT,
        connect_retries=settings.LLM_CONNECT_RETRIES,
    )


def message_payload(message: Message, user) -> dict:
    """The stored answer as `user` may see it now: citations re-checked against their access
    (a replay can come long after the answer, and access may have changed meanwhile)."""
    citations = citations_shown(user=user, messages=[message])[message.id]
    return {
        "message_id": str(message.id),
        "status": message.status,
        "html": answer_html_shown(message.rendered_html, citations),
        "citations": citations,
        **steps_and_sources_shown(user=user, messages=[message])[message.id],  # {"steps", "sources"}
        "error": message.error,
        "title": message.conversation.title,
    }


@sync_to_async
def _prepare(message: Message, user, *, language: str, notices: bool) -> tuple[str, list[dict], AnswerSetup]:
    """The question this answer replies to, the history of its branch only, and the assistant's
    instructions, connectors, parameters and tools and the user's memories (answer_setup): one
    trip to the database's thread. The connection is lent back when the model comes next."""
    question, history = question_and_history(message=message)
    lap("conversation_load")
    setup = answer_setup(message=message, user=user, question=question, language=language, notices=notices)
    if setup.reply is None:
        _lend_back(connection)  # the embedding and the model server come next
    return question, history, setup


@sync_to_async
def _retrieve(
    message: Message, embedding: list[float], question: str, groups: list[str], material_tokens: int,
    filters: SearchFilters = NO_FILTERS,
) -> list[Passage]:
    """The conversation's attached files first (what the user asks about), then the index fills the rest
    (only the assistant's connectors, when it has some), as a reader in `groups` may see it."""
    attached, used = attachment_passages(
        conversation=message.conversation, question_embedding=embedding, material_tokens=material_tokens
    )
    lap("attachments")
    retrieved = retrieve(
        embedding=embedding, query=question, groups=groups, material_tokens=material_tokens - used,
        filters=filters,
    )
    return attached + [replace(p, n=p.n + len(attached)) for p in retrieved]


#: Pauses between attempts to save an answer while the database restarts (about 8 s in all).
SAVE_RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)


@sync_to_async
def _save(message: Message, **fields) -> None:
    """Save the answer's fields; a database that is restarting (a failover) is waited for,
    so an answer the user saw is not lost and never left "streaming" for ever."""
    for name, value in fields.items():
        setattr(message, name, value)
    for delay in (*SAVE_RETRY_DELAYS, None):
        try:
            message.save(update_fields=[*fields, "updated_at"])
            return
        except (OperationalError, InterfaceError):
            if delay is None:
                raise
            connection.close()  # the next attempt opens a fresh connection
            time.sleep(delay)


@sync_to_async
def _drop_connection() -> None:
    connection.close()


def _lend_back(conn) -> None:
    """With a pool, hand this request's connection back while it waits on the model: a stream
    lasts seconds to minutes, and would otherwise keep a pooled connection from other requests.
    The next query borrows one again (microseconds). Without a pool, keep it (reopening costs)."""
    if "pool" in settings.DATABASES["default"].get("OPTIONS", {}):
        conn.close()


@sync_to_async
def _lend_back_connection() -> None:
    _lend_back(connection)


async def _save_lending(message: Message, **fields) -> None:
    await _save(message, **fields)
    await _lend_back_connection()


async def _stop_requested(message: Message) -> bool:
    try:
        status = await Message.objects.filter(id=message.id).values_list("status", flat=True).afirst()
    except (OperationalError, InterfaceError):  # the database is restarting: look again later
        await _drop_connection()
        return False
    return status == Message.Status.STOPPED


async def _stop_requested_lending(message: Message) -> bool:
    stopped = await _stop_requested(message)
    await _lend_back_connection()
    return stopped


@dataclass
class _Written:
    """What the model has written so far, and whether the user stopped it."""

    parts: list[str] = field(default_factory=list)
    stopped: bool = False

    @property
    def text(self) -> str:
        return "".join(self.parts)


async def _material(message: Message, setup, question: str, history: list[dict], *, share: float = 1.0):
    """The passages and the prompt for the model, and the window's budget; nothing when the
    answer needs no model ("remember that ..."). `share`: of the material budget, for retrieval."""
    if setup.reply is not None:
        return [], [], None
    window = context_window_cached() or await asyncio.to_thread(context_window, get_chat_client())
    budget, history = plan_budget(
        window=window, system_prompt=setup.system_prompt, question=question, history=history,
        answer_tokens=setup.params.max_tokens,
    )
    lap("budget")
    # Not overlapped with the database work above: the embedding holds the GIL for much
    # of its time, and a thread waiting on the database then waits for the GIL after
    # every query (measured: slower than one after the other).
    embedding = await asyncio.get_running_loop().run_in_executor(_embedder_thread(), embed_query, question)
    lap("embedding")
    material = int(budget.material * share)
    passages = await _retrieve(message, embedding, question, setup.groups, material, setup.filters)
    lap("context")  # the hits widened into blocks (assistant.rag.context)
    prompt = build_messages(question=question, passages=passages, history=history, system_prompt=setup.system_prompt)
    lap("prompt")
    return passages, prompt, budget


async def _tokens(
    message: Message, setup, prompt: list[dict], budget, written: _Written
) -> AsyncIterator[tuple[str, dict]]:
    """The model's text as it streams (`token` events), recorded in `written`; ends early when the
    user stops it."""
    started = last_check = time.monotonic()
    stream = answer_stream(
        setup, get_chat_client(), prompt, max_tokens=budget.answer if budget else settings.LLM_MAX_TOKENS
    )
    await _lend_back_connection()
    async with aclosing(stream):  # closing the stream cancels generation on the server
        async for delta in stream:
            if delta.text:
                first = None
                if not written.parts:
                    lap("model")  # the request to the model server, and its time to the first token
                    first = int((time.monotonic() - started) * 1000)
                written.parts.append(delta.text)
                yield "token", {"text": delta.text}
                if first is not None:  # saved once the token is on its way to the reader
                    await _save(message, first_token_ms=first)
                    await _lend_back_connection()
            now = time.monotonic()
            if now - last_check >= STOP_CHECK_SECONDS:
                last_check = now
                written.stopped = await _stop_requested(message)
                await _lend_back_connection()
                if written.stopped:
                    return


def _agent_fields(run: AgentRun | None) -> dict:
    """What the agent path stores besides the answer: its steps."""
    return {} if run is None else {"steps": run.step_dicts()}


async def _model_failed(message: Message, partial: str, exc: ModelServerError, run: AgentRun | None) -> dict:
    event = error_event(exc, partial=bool(partial))
    await _save(message, content=partial, status=Message.Status.ERROR, error=event["message"],
                error_retryable=event["retryable"], rendered_html=finalize_answer(partial, [])[0] if partial else "",
                **_agent_fields(run))
    return event


async def _database_failed(message: Message, partial: str) -> dict:
    """The database went away while preparing or streaming (and did not come back within the
    save retries): keep what was written, mark it, let the user retry."""
    logger.warning("answer %s: the database was unavailable", message.id, exc_info=True)
    await _drop_connection()
    event = {
        "message": "The answer was interrupted because the database was briefly unavailable. Press Retry.",
        "kind": "database", "retryable": True, "partial": bool(partial),
    }
    try:
        await _save(message, content=partial, status=Message.Status.ERROR, error=event["message"],
                    rendered_html=finalize_answer(partial, [])[0] if partial else "")
    except (OperationalError, InterfaceError):
        pass
    return event


async def _title_event(message: Message, question: str, content: str):
    try:
        title = await title_generate(
            client=get_chat_client(), conversation=message.conversation, question=question, answer=content
        )
    except (OperationalError, InterfaceError):  # the answer is saved; the title can wait
        logger.warning("answer %s: no title, the database was unavailable", message.id)
        await _drop_connection()
        return None
    return "title", {"title": title}


async def answer_events(
    message: Message, user, *, suggest_title: bool = False, notices: bool = False, language: str = ""
) -> AsyncIterator[tuple[str, dict]]:
    """Yield (event, data) pairs: `token`s, then `done`, or `error` (with a `kind`, see chat.failures).

    With `notices`, `notice` events come first, e.g. that a connector is still being indexed.

    With `suggest_title`, after the conversation's first answer the model also names the
    conversation: `done` says `title_pending` and a `title` event follows.

    `language` is the user's interface language, a hint to the model for the answer's language."""
    claimed = await Message.objects.filter(id=message.id, status=Message.Status.PENDING).aupdate(
        status=Message.Status.STREAMING
    )
    lap("claim")
    if not claimed:  # already answered (or being answered): replay the stored result
        stored = await Message.objects.select_related("conversation").aget(id=message.id)
        yield "done", await sync_to_async(message_payload)(stored, user)
        return

    written, run = _Written(), None
    try:
        question, history, setup = await _prepare(message, user, language=language, notices=notices)
        lap("setup")
        for notice in setup.notices if notices else ():
            yield "notice", {"message": notice}
        agent = bool(setup.tools) and setup.reply is None  # tools to offer: the agent loop answers
        passages, prompt, budget = await _material(message, setup, question, history, share=0.5 if agent else 1.0)
        if agent:
            run = agent_run_start(message=message, setup=setup, prompt=prompt, budget=budget, passages=passages,
                                  client=get_chat_client(), should_stop=lambda: _stop_requested_lending(message))
        stream = agent_events(message, run, written, _save_lending) if run else _tokens(
            message, setup, prompt, budget, written)
        rendered_at = 0.0
        async with aclosing(stream) as events:
            async for event in events:
                yield event
                if event[0] == "token" and not rendered_at:
                    lap("first_token_write")  # the consumer wrote it (to the client, or to the relay)
                    trace_log("answer-stages", answer=str(message.id), agent=run is not None)
                if event[0] == "token" and time.monotonic() - rendered_at >= settings.STREAM_RENDER_SECONDS:
                    # The text so far as the page will show it (markdown, code), sanitised like the end.
                    rendered_at = time.monotonic()
                    yield "render", {"html": render_partial_html(written.text)}
    except ModelServerError as exc:
        yield "error", await _model_failed(message, written.text, exc, run)
        return
    except (OperationalError, InterfaceError):
        yield "error", await _database_failed(message, written.text)
        return
    except (asyncio.CancelledError, GeneratorExit):  # the reader went away: keep what was written
        await asyncio.shield(_save(message, content=written.text, status=Message.Status.STOPPED,
                                   rendered_html=finalize_answer(written.text, [])[0], **_agent_fields(run)))
        raise

    content = written.text.strip()
    passages = run.context.book.passages if run else passages  # with tools: every passage any step showed
    rendered, citations = finalize_answer(content, passages)
    await _save(
        message, content=content, rendered_html=rendered, citations=citations,
        sources=sources_record(passages, citations),
        status=Message.Status.STOPPED if written.stopped else Message.Status.COMPLETE,
        model=setup.params.model if setup.reply is None else "", **_agent_fields(run),
    )
    await sync_to_async(lambda: message.conversation.refresh_from_db())()
    title_pending = suggest_title and not written.stopped and bool(content) and needs_title(message.conversation)
    yield "done", {**await sync_to_async(message_payload)(message, user), "title_pending": title_pending}
    if title_pending and (event := await _title_event(message, question, content)):
        yield event
