"""Child processes of the launcher: their pids, logs, signals, and whether one is still the same
process (a pid reused by the system is not ours)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path




def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal_pid(pid: int | None, sig: int) -> None:
    if not pid:
        return
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_pid_gone(pid: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


# --- child processes ---------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    pid: int
    log_path: Path
    popen: subprocess.Popen | None = None  # None for a process adopted from an earlier run
    create_time: float = 0.0
    output: list[str] = field(default_factory=list)  # captured stdout of a step, if asked
    threads: list[threading.Thread] = field(default_factory=list)

    def poll(self) -> int | None:
        if self.popen is not None:
            return self.popen.poll()
        return None if _pid_alive(self.pid) else -1

    def terminate(self) -> None:
        """Ask the main process to stop (Celery's warm shutdown needs the signal on its main process)."""
        if self.poll() is None:
            _signal_pid(self.pid, signal.SIGTERM)

    def kill_group(self) -> None:
        """Kill whatever is left of the process group (pool workers, helpers)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.popen is not None:
            try:
                self.popen.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass


def _pump(stream, log_handle, echo: bool, sink: list[str] | None) -> None:
    for line in iter(stream.readline, b""):
        # A generated admin password goes to the terminal once, never into a log file.
        log_handle.write(b"Admin login: (shown on the terminal only)\n" if line.startswith(b"Admin login:") else line)
        log_handle.flush()
        if echo:
            try:
                sys.stdout.buffer.write(line)
                sys.stdout.flush()
            except (OSError, ValueError):
                echo = False
        if sink is not None:
            sink.append(line.decode("utf-8", "replace").rstrip("\n"))
    stream.close()
    log_handle.close()




def _same_process(pid, create_time) -> bool:
    """Whether `pid` still is the process that was started at `create_time` (pids get reused)."""
    try:
        pid, create_time = int(pid), float(create_time)
    except (TypeError, ValueError):
        return False
    return _pid_alive(pid) and abs(_create_time(pid) - create_time) < 1.0


def _create_time(pid: int) -> float:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0


def _models_answer(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/models", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join("  | " + line for line in text.splitlines()[-lines:])
