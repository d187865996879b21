"""Answering a question: retrieve under the user's ACL, prompt the model, stream
tokens, then save the answer with the citations that point to given passages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from functools import lru_cache

from asgiref.sync import sync_to_async
from django.conf import settings

from assistant.chat.attachments import attachment_passages
from assistant.chat.models import Message
from assistant.chat.selectors import history_for
from assistant.rag.citations import finalize_answer
from assistant.rag.context import context_window, plan_budget
from assistant.rag.prompts import SYSTEM_PROMPT, build_messages
from assistant.rag.retrieval import Passage, embed_query, retrieve
from connectors.selectors import acl_groups_of
from inference.chat_client import ChatClient, ModelServerError

STOP_CHECK_SECONDS = 0.3


@lru_cache(maxsize=1)
def get_chat_client() -> ChatClient:
    return ChatClient(
        base_url=settings.LLM_BASE_URL,
        model=settings.LLM_MODEL,
        api_key=settings.LLM_API_KEY,
        timeout=settings.LLM_TIMEOUT,
        connect_retries=settings.LLM_CONNECT_RETRIES,
    )


def message_payload(message: Message) -> dict:
    return {
        "message_id": str(message.id),
        "status": message.status,
        "html": message.rendered_html,
        "citations": message.citations,
        "error": message.error,
        "title": message.conversation.title,
    }


@sync_to_async
def _prepare(message: Message, user) -> tuple[str, list[dict]]:
    question = (
        Message.objects.filter(
            conversation_id=message.conversation_id, role=Message.Role.USER, created_at__lte=message.created_at
        )
        .order_by("-created_at")
        .values_list("content", flat=True)
        .first()
    )
    return question or "", history_for(message=message)


@sync_to_async
def _retrieve(message: Message, embedding: list[float], question: str, user, material_tokens: int) -> list[Passage]:
    """The conversation's attached files first (what the user asks about), then the index fills the rest."""
    attached, used = attachment_passages(
        conversation=message.conversation, question_embedding=embedding, material_tokens=material_tokens
    )
    retrieved = retrieve(
        embedding=embedding, query=question, groups=acl_groups_of(user), material_tokens=material_tokens - used
    )
    return attached + [replace(p, n=p.n + len(attached)) for p in retrieved]


@sync_to_async
def _save(message: Message, **fields) -> None:
    for name, value in fields.items():
        setattr(message, name, value)
    message.save(update_fields=[*fields, "updated_at"])


async def answer_events(message: Message, user) -> AsyncIterator[tuple[str, dict]]:
    """Yield (event, data) pairs: `token`s, then `done`, or `error`."""
    claimed = await Message.objects.filter(id=message.id, status=Message.Status.PENDING).aupdate(
        status=Message.Status.STREAMING
    )
    if not claimed:  # already answered (or being answered): replay the stored result
        stored = await Message.objects.select_related("conversation").aget(id=message.id)
        yield "done", message_payload(stored)
        return

    parts: list[str] = []
    try:
        question, history = await _prepare(message, user)
        window = await asyncio.to_thread(context_window, get_chat_client())
        budget, history = plan_budget(window=window, system_prompt=SYSTEM_PROMPT, question=question, history=history)
        embedding = await asyncio.to_thread(embed_query, question)
        passages = await _retrieve(message, embedding, question, user, budget.material)
        prompt = build_messages(question=question, passages=passages, history=history)
        started = time.monotonic()
        last_check = started
        stopped = False
        stream = get_chat_client().stream(
            prompt, max_tokens=budget.answer, temperature=settings.LLM_TEMPERATURE
        )
        async with aclosing(stream):  # closing the stream cancels generation on the server
            async for delta in stream:
                if delta.text:
                    if not parts:
                        await _save(message, first_token_ms=int((time.monotonic() - started) * 1000))
                    parts.append(delta.text)
                    yield "token", {"text": delta.text}
                now = time.monotonic()
                if now - last_check >= STOP_CHECK_SECONDS:
                    last_check = now
                    status = await Message.objects.filter(id=message.id).values_list("status", flat=True).afirst()
                    if status == Message.Status.STOPPED:
                        stopped = True
                        break
    except ModelServerError as exc:
        partial = "".join(parts)
        note = "The answer was cut off: " if partial else ""
        await _save(message, content=partial, status=Message.Status.ERROR, error=f"{note}{exc}",
                    rendered_html=finalize_answer(partial, [])[0] if partial else "")
        yield "error", {"message": str(exc), "retryable": exc.retryable, "partial": bool(partial)}
        return
    except asyncio.CancelledError:  # the browser went away: keep what was written
        partial = "".join(parts)
        await asyncio.shield(_save(message, content=partial, status=Message.Status.STOPPED,
                                   rendered_html=finalize_answer(partial, [])[0]))
        raise

    content = "".join(parts).strip()
    rendered, citations = finalize_answer(content, passages)
    await _save(
        message,
        content=content,
        rendered_html=rendered,
        citations=citations,
        status=Message.Status.STOPPED if stopped else Message.Status.COMPLETE,
        model=settings.LLM_MODEL,
    )
    await sync_to_async(lambda: message.conversation.refresh_from_db())()
    yield "done", message_payload(message)
