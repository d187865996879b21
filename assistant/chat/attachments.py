"""Files attached to a conversation: checked, parsed, chunked and embedded, private to it.

Attachments never enter the shared index. When the question is answered they come first
in the model's material budget: whole when they all fit, else their chunks most similar
to the question until the budget is spent.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.translation import gettext as _

from assistant.accounts import ratelimit
from assistant.chat.models import Attachment, AttachmentChunk, Conversation
from assistant.chat.services import InvalidInput
from assistant.rag.context import BLOCK_OVERHEAD_TOKENS, Segment
from assistant.rag.retrieval import Passage
from connectors.chunking import ChunkLimitExceeded, chunk_text
from connectors.indexing import get_embedder, parse_limits
from connectors.parsing import SUPPORTED_EXTENSIONS, ParseError, media_type_for, parse_document
from connectors.uploads import _content_problem, _extension, accepted_extensions, human_size, safe_file_name
from inference.tokens import approx_token_count

CONNECTOR_LABEL = "Attached file"
#: Embedding happens while the user waits: past this many chunks (about 200 tokens each),
#: a file belongs in a connector, not in a conversation.
MAX_CHUNKS = 1000
#: Characters a parser may produce for an attachment: room for MAX_CHUNKS chunks of prose
#: (about four characters a token) with margin. The parser stops there, so a huge file is
#: refused in the time it takes to read that much, not after its whole text is built.
CHARS_PER_CHUNK_TOKEN = 8
#: The user waits for the parser: at most this long (or PARSE_TIMEOUT_SECONDS when shorter).
PARSE_SECONDS = 20.0
#: Room for the multipart envelope around the file when the request's length is checked.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def attachment_upload_allowed(*, user) -> ratelimit.Verdict:
    """Count one attachment upload of `user`; refused past ATTACHMENT_RATE_LIMIT."""
    rate = ratelimit.Rate(*settings.ATTACHMENT_RATE_LIMIT) if settings.ATTACHMENT_RATE_LIMIT else None
    return ratelimit.hit("attachment", str(user.pk), rate)


def request_too_large(content_length: str | None) -> str | None:
    """Why a request announcing `content_length` bytes is refused before its body is parsed, or None."""
    limit = settings.UPLOAD_MAX_BYTES
    try:
        size = int(content_length or 0)
    except ValueError:
        return None  # a missing or odd header: the file itself is counted as it streams
    if size > limit + MULTIPART_OVERHEAD_BYTES:
        return _("The file is %(size)s, over the limit of %(limit)s.") % {
            "size": human_size(size), "limit": human_size(limit)
        }
    return None


def accept_attribute() -> str:
    """The file picker's `accept` value: the extensions the parsers read."""
    return ",".join(accepted_extensions())


def attachment_get(*, user, attachment_id) -> Attachment:
    """The user's attachment; Attachment.DoesNotExist for anyone else's (shown as 404)."""
    return Attachment.objects.select_related("conversation").get(id=attachment_id, conversation__user=user)


def _read(upload: UploadedFile, limit: int) -> bytes:
    parts, size = [], 0
    for part in upload.chunks():
        size += len(part)
        if size > limit:  # the announced size may lie
            raise InvalidInput(_("The file is larger than the limit of %(limit)s.") % {"limit": human_size(limit)})
        parts.append(part)
    return b"".join(parts)


def _check(content: bytes, ext: str) -> None:
    """Refuse content that is not what its name says (a program renamed .pdf)."""
    with tempfile.TemporaryDirectory(prefix="attachment-") as directory:
        path = Path(directory) / f"file{ext}"
        path.write_bytes(content)
        problem = _content_problem(path, ext)
    if problem:
        raise InvalidInput(problem)


def attachment_add(*, conversation: Conversation, upload: UploadedFile) -> Attachment:
    """Check, parse, chunk and embed one file; store it on the conversation, not yet on a message.

    Raises InvalidInput with a reason the user can act on; nothing is stored then.
    """
    name, problem = safe_file_name(upload.name or "")
    if problem:
        raise InvalidInput(problem)
    ext = _extension(name)
    if ext not in SUPPORTED_EXTENSIONS:
        accepted = ", ".join(accepted_extensions())
        if ext:
            message = _("%(ext)s files cannot be attached; attach one of: %(accepted)s.") % {
                "ext": ext,
                "accepted": accepted,
            }
        else:
            message = _("Files without an extension cannot be attached; attach one of: %(accepted)s.") % {
                "accepted": accepted
            }
        raise InvalidInput(message)
    limit = settings.UPLOAD_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        raise InvalidInput(
            _("The file is %(size)s, over the limit of %(limit)s.")
            % {"size": human_size(upload.size), "limit": human_size(limit)}
        )
    content = _read(upload, limit)
    _check(content, ext)
    media_type = media_type_for(name)
    text, spans = _text_and_spans(content, name, media_type)
    vectors = get_embedder().embed([span.text for span in spans])
    with transaction.atomic():
        attachment = Attachment.objects.create(
            conversation=conversation, name=name, media_type=media_type, size=len(content), text=text
        )
        AttachmentChunk.objects.bulk_create(
            AttachmentChunk(
                attachment=attachment, ordinal=ordinal, text=span.text, start_char=span.start,
                end_char=span.end, token_count=span.token_count, embedding=vector,
            )
            for ordinal, (span, vector) in enumerate(zip(spans, vectors, strict=True))
        )
    return attachment


def _too_long() -> InvalidInput:
    return InvalidInput(
        _(
            "The file is too long to attach to a conversation (more than about %(tokens)s tokens); "
            "ask an admin to add it to a connector."
        )
        % {"tokens": f"{MAX_CHUNKS * settings.CHUNK_TOKENS:,}"}
    )


def _text_and_spans(content: bytes, name: str, media_type: str):
    """Parse in a child process under the parse limits, with a character cap sized for
    MAX_CHUNKS; cut into spans, stopping at MAX_CHUNKS. Both caps are counted as the
    parser and the chunker go, so an oversized file costs a bounded, small amount of work."""
    base = parse_limits()
    limits = replace(
        base,
        max_chars=MAX_CHUNKS * settings.CHUNK_TOKENS * CHARS_PER_CHUNK_TOKEN,
        timeout_seconds=min(base.timeout_seconds, PARSE_SECONDS),
    )
    try:
        # Always in a child: the web process's thread is never held by a parser, whatever the file.
        text = parse_document(content, filename=name, media_type=media_type, isolate=True, limits=limits).text
    except ParseError as exc:
        if "PARSE_MAX_CHARS" in str(exc):
            raise _too_long() from None
        raise InvalidInput(str(exc)) from None
    if not text.strip():
        raise InvalidInput(_("No text could be read from the file (a scanned PDF has none)."))
    try:
        spans = chunk_text(
            text, max_tokens=settings.CHUNK_TOKENS, overlap_tokens=settings.CHUNK_OVERLAP_TOKENS, max_chunks=MAX_CHUNKS
        )
    except ChunkLimitExceeded:
        raise _too_long() from None
    return text, spans


def attachment_remove(*, attachment: Attachment) -> None:
    attachment.delete()


def _passage(attachment: Attachment, n: int, chunks: list[dict], hit_id: int) -> Passage:
    """One block of an attachment: the run of neighbouring `chunks` (all of them: the whole text)."""
    start, end = chunks[0]["start_char"], chunks[-1]["end_char"]
    return Passage(
        n=n, chunk_id=hit_id, document_id=str(attachment.id), title=attachment.name, location=attachment.name,
        url="", connector=CONNECTOR_LABEL, text=attachment.text[start:end], start_char=start, end_char=end,
        segments=tuple(Segment(c["id"], c["start_char"], c["end_char"]) for c in chunks), kind="attachment",
    )


def _ranked(chunks: list[dict], question_embedding: list[float] | None) -> list[int]:
    """Indices of `chunks`, most similar to the question first (cosine); file order without a question."""
    if question_embedding is None:
        return list(range(len(chunks)))
    matrix = np.asarray([c["embedding"] for c in chunks], dtype=np.float32)
    query = np.asarray(question_embedding, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(query)
    scores = matrix @ query / np.where(norms == 0, 1.0, norms)
    return [int(i) for i in np.argsort(-scores, kind="stable")]


def attachment_passages(
    *, conversation: Conversation, question_embedding: list[float] | None, material_tokens: int, first_n: int = 1
) -> tuple[list[Passage], int]:
    """The conversation's attachments as passages numbered from `first_n`, and the tokens they use.

    Whole texts when all of them fit `material_tokens`; else the chunks closest to the
    question, best first, while budget remains, merged into runs of neighbouring chunks
    and given in file order.
    """
    attachments = {a.id: a for a in Attachment.objects.filter(conversation=conversation).order_by("created_at")}
    if not attachments or material_tokens <= 0:
        return [], 0
    fields = ["id", "attachment_id", "ordinal", "start_char", "end_char", "token_count"]
    chunks = AttachmentChunk.objects.filter(attachment_id__in=list(attachments)).order_by(
        "attachment__created_at", "ordinal"
    )
    whole = sum(approx_token_count(a.text) + BLOCK_OVERHEAD_TOKENS for a in attachments.values())
    if whole <= material_tokens:
        by_attachment: dict = {}
        for chunk in chunks.values(*fields):
            by_attachment.setdefault(chunk["attachment_id"], []).append(chunk)
        passages = [
            _passage(attachments[attachment_id], first_n + i, run, run[0]["id"])
            for i, (attachment_id, run) in enumerate(by_attachment.items())
        ]
        return passages, whole

    chunks = list(chunks.values(*fields, "embedding"))
    rank: dict[tuple, int] = {}  # (attachment, ordinal) of each chosen chunk -> its rank
    used = 0
    for index in _ranked(chunks, question_embedding):
        chunk = chunks[index]
        key = (chunk["attachment_id"], chunk["ordinal"])
        joins_run = (key[0], key[1] - 1) in rank or (key[0], key[1] + 1) in rank
        cost = chunk["token_count"] + (0 if joins_run else BLOCK_OVERHEAD_TOKENS)
        if used + cost <= material_tokens:  # else a shorter chunk further down may still fit
            rank[key] = len(rank)
            used += cost

    passages: list[Passage] = []
    run: list[dict] = []
    for chunk in [c for c in chunks if (c["attachment_id"], c["ordinal"]) in rank] + [None]:
        previous = run[-1] if run else None
        if chunk and previous and (chunk["attachment_id"], chunk["ordinal"]) == (
            previous["attachment_id"], previous["ordinal"] + 1
        ):
            run.append(chunk)
            continue
        if run:
            best = min(run, key=lambda c: rank[(c["attachment_id"], c["ordinal"])])
            passages.append(_passage(attachments[run[0]["attachment_id"]], first_n + len(passages), run, best["id"]))
        run = [chunk] if chunk else []
    return passages, used
