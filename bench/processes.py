"""Child processes of the benchmarks that start a stack of their own: wait for one to answer
over HTTP, stop one. Shared by bench/chat.py and bench/load.py."""

from __future__ import annotations

import subprocess
import time

import httpx


def wait_http(url: str, *, timeout: float, process: subprocess.Popen | None = None, hint: str = "") -> None:
    """Return once `url` answers below 500; fail early if `process` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}{hint}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def stop(*processes: subprocess.Popen, grace: float = 15) -> None:
    """Terminate, then kill what has not exited after `grace` seconds."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
