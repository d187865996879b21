"""Limits on reading hostile files: bounded expansion, time and memory.

A document can cost far more to read than its size suggests: a .docx is a ZIP archive
whose few kilobytes may unpack to gigabytes (a "zip bomb"), and a crafted PDF can make a
parser loop or allocate without end. Two defences, both reported as a ParseError with a
reason an admin can act on, so the file fails alone and the sync (or the upload) goes on:

* `zip_expansion_check`: refuse an archive whose members would unpack to more than the
  allowed total, or that has absurdly many members, before anything is decompressed. The
  sizes checked are those declared in the archive's directory; Python's zipfile never
  inflates a member past its declared size, so a lying directory cannot get around it.
* `run_limited`: run a parser in a forked child process with a wall-clock deadline and an
  address-space limit (RLIMIT_AS) and a CPU limit; a child that runs out of time or memory,
  or crashes, is killed and only that file is refused. Forking costs a few milliseconds and
  keeps the worker (its database connection, its loaded embedding model) out of harm's way.

The values come in as a plain `ParseLimits` from the caller (connectors.indexing builds it
from the settings PARSE_TIMEOUT_SECONDS, PARSE_MAX_MEMORY_MB, PARSE_MAX_EXPANDED_MB and
PARSE_MAX_CHARS): this package never imports Django.
"""

from __future__ import annotations

import faulthandler
import io
import os
import pickle
import resource
import select
import signal
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from connectors.parsing.common import DEFAULT_MAX_CHARS, ParseError

T = TypeVar("T")

#: More members than this in a document archive is not a document (a .docx has a few dozen).
MAX_ARCHIVE_MEMBERS = 10_000
DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_MAX_MEMORY_MB = 1024
DEFAULT_MAX_EXPANDED_MB = 256

_MB = 1024 * 1024


@dataclass(frozen=True)
class ParseLimits:
    """What reading one file may cost; each limit stops the parser as it goes, with a reason."""

    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_MB * _MB
    max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_MB * _MB
    #: Characters of extracted text: past it the parser stops and the file is refused.
    max_chars: int = DEFAULT_MAX_CHARS


DEFAULT_LIMITS = ParseLimits()


def _megabytes(size: int) -> str:
    return f"{size / _MB:,.0f} MB" if size >= _MB else f"{size:,} bytes"


def zip_expansion_problem(source, *, what: str, max_expanded: int | None = None) -> str | None:
    """Why the ZIP archive `source` (bytes, a path or a file object) is refused, or None.

    Only the archive's directory is read; nothing is decompressed.
    """
    limit = DEFAULT_LIMITS.max_expanded_bytes if max_expanded is None else max_expanded
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    try:
        with zipfile.ZipFile(source) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None  # not a readable archive: the parser says why in its own words
    if len(members) > MAX_ARCHIVE_MEMBERS:
        return (
            f"The {what} contains {len(members):,} files inside its archive (at most {MAX_ARCHIVE_MEMBERS:,} "
            "are accepted); it is refused as a possible archive bomb."
        )
    total = sum(max(0, member.file_size) for member in members)
    if total > limit:
        return (
            f"The {what} would unpack to {_megabytes(total)}, over the limit of {_megabytes(limit)} "
            "(PARSE_MAX_EXPANDED_MB); it is refused as a possible archive bomb."
        )
    return None


def zip_expansion_check(content: bytes, *, what: str, max_expanded: int | None = None) -> None:
    problem = zip_expansion_problem(content, what=what, max_expanded=max_expanded)
    if problem:
        raise ParseError(problem)


# --- running a parser in a child process ----------------------------------------------------


def _vm_size() -> int:
    """This process's virtual memory size in bytes (what RLIMIT_AS counts)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _die_with_parent() -> None:
    """Linux: the child is killed when the worker that forked it dies (SIGKILL of a worker)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child(write_fd: int, func: Callable[..., T], args, kwargs, memory: int, cpu_seconds: int) -> None:
    status = 0
    try:
        _die_with_parent()
        faulthandler.disable()  # a crash is reported by the parent, not as the worker's stack
        # Default signal handlers: the worker's own (Celery's SIGTERM) must not run here.
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        if cpu_seconds:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
        if memory:
            # The budget is on top of what the forked image already maps (the worker's model).
            limit = _vm_size() + memory
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            outcome = ("ok", func(*args, **kwargs))
        except MemoryError:
            outcome = ("memory", None)
        except ParseError as exc:
            outcome = ("parse", str(exc))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides
            outcome = ("error", f"{exc.__class__.__name__}: {str(exc).strip()}"[:1000])
        try:
            payload = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            payload = pickle.dumps(("memory", None))
        view = memoryview(payload)
        while view:
            written = os.write(write_fd, view)
            view = view[written:]
    except BaseException:  # noqa: BLE001
        status = 1
    finally:
        os._exit(status)  # never run the parent's atexit handlers, never close its connections


def run_limited(
    func: Callable[..., T],
    *args,
    timeout: float | None = None,
    memory_bytes: int | None = None,
    what: str = "file",
    cancelled: Callable[[], bool] | None = None,
    **kwargs,
) -> T:
    """`func(*args, **kwargs)` in a forked child under a deadline and a memory limit.

    Its ParseError is raised here as is; running out of time or memory, crashing, or any
    other exception becomes a ParseError that says which. `cancelled` is asked about once a
    second while the child works: when it says yes, the child is killed and ParseCancelled
    raised (a sync that was cancelled does not wait for its current file). Where fork is not
    available the function runs in-process, unlimited.
    """
    timeout = DEFAULT_LIMITS.timeout_seconds if timeout is None else timeout
    memory = DEFAULT_LIMITS.max_memory_bytes if memory_bytes is None else memory_bytes
    if not hasattr(os, "fork") or sys.platform != "linux":
        return func(*args, **kwargs)

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_fd)
        _child(write_fd, func, args, kwargs, memory, int(timeout) + 1 if timeout else 0)
    os.close(write_fd)
    deadline = time.monotonic() + timeout if timeout else None
    stopped = ""
    try:
        chunks, stopped = _collect(read_fd, deadline, cancelled)
    finally:
        os.close(read_fd)
        if stopped:
            _kill(pid)
        _, status = _reap(pid)

    if stopped == "cancelled":
        raise ParseCancelled(f"Reading the {what} was stopped: the sync was cancelled.")
    if stopped == "timeout":
        raise ParseError(
            f"Reading the {what} took longer than {timeout:g} seconds (PARSE_TIMEOUT_SECONDS); it was stopped."
        )
    if os.WIFSIGNALED(status) and not chunks:
        signum = os.WTERMSIG(status)
        if signum == signal.SIGXCPU:
            raise ParseError(f"Reading the {what} used too much processor time; it was stopped.")
        if signum == signal.SIGKILL:
            raise ParseError(f"Reading the {what} was stopped by the system (out of memory or time).")
        raise ParseError(f"The parser crashed on this {what} (signal {signum}); the file is probably damaged.")
    try:
        kind, value = pickle.loads(b"".join(chunks))
    except Exception:
        raise ParseError(f"The parser stopped unexpectedly on this {what}; the file is probably damaged.") from None
    if kind == "ok":
        return value
    if kind == "parse":
        raise ParseError(value)
    if kind == "memory":
        raise ParseError(
            f"Reading the {what} needed more than {_megabytes(memory)} of memory (PARSE_MAX_MEMORY_MB); "
            "it was stopped."
        )
    raise ParseError(f"The {what} could not be read: {value}")


class ParseCancelled(Exception):
    """The caller asked to stop while a file was being read (not a fault of the file)."""


def _collect(read_fd: int, deadline: float | None, cancelled) -> tuple[list[bytes], str]:
    """The child's output; and "timeout" or "cancelled" when it must be stopped instead."""
    chunks: list[bytes] = []
    while True:
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and wait <= 0:
            return chunks, "timeout"
        if cancelled is not None:
            wait = 1.0 if wait is None else min(wait, 1.0)
        ready, _, _ = select.select([read_fd], [], [], wait)
        if not ready:
            if cancelled is not None and cancelled():
                return chunks, "cancelled"
            continue
        data = os.read(read_fd, 1 << 20)
        if not data:
            return chunks, ""
        chunks.append(data)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> tuple[int, int]:
    while True:
        try:
            return os.waitpid(pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return pid, 0
