"""The production stack (docker-compose.yml, docker/) agrees with the code and with .env.example.

No Docker engine runs on the development machines, so these tests read the files instead of
starting containers: every variable is documented, every role the services ask for exists in the
entrypoint, what the entrypoint starts exists in the project, the GPU is reserved, images are
pinned. They need no database.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
SETTINGS = ROOT / "assistant" / "settings.py"

APP_SERVICES = ("web", "worker", "answers", "beat")
SERVICES = ("db", "redis", "llm", *APP_SERVICES)
# Beat is a single scheduler process with no control channel to ping: when it dies its container
# exits and the restart policy brings it back, which is what a healthcheck would achieve.
HEALTHCHECK_EXEMPT = {"beat"}

ENV_LINE = re.compile(r"^\s*#?\s*([A-Za-z_][A-Za-z0-9_]*)=")
# ${NAME}, ${NAME:-default}, ${NAME:?error}, $NAME; "$$" is compose's escape for a literal "$".
COMPOSE_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
SETTINGS_VARIABLE = re.compile(
    r"(?:env_(?:str|int|float|bool|list|choice)\(|os\.environ\.get\(|os\.getenv\(|os\.environ\[)"
    r"""\s*["']([A-Za-z_][A-Za-z0-9_]*)["']"""
)
DEFAULT_EXPANSION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


# --- helpers ------------------------------------------------------------------------------------


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict:
    return load_compose()["services"]


def documented_variables() -> set[str]:
    return {match.group(1) for line in ENV_EXAMPLE.read_text().splitlines() if (match := ENV_LINE.match(line))}


def strings_in(node) -> list[str]:
    """Every key and string value of a parsed YAML document: what compose interpolates."""
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in strings_in(key) + strings_in(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings_in(item)]
    return [node] if isinstance(node, str) else []


def compose_variables() -> set[str]:
    found = set()
    for text in strings_in(load_compose()):
        found |= set(COMPOSE_VARIABLE.findall(text.replace("$$", "")))
    return found


def settings_variables() -> set[str]:
    return set(SETTINGS_VARIABLE.findall(SETTINGS.read_text()))


def resolve_defaults(text: str) -> str:
    """${NAME:-default} -> default, as compose does when NAME is unset."""
    return DEFAULT_EXPANSION.sub(lambda m: m.group(2) or "", str(text))


def command_of(service: dict) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def entrypoint_roles() -> set[str]:
    """The patterns of the entrypoint's `case "$role" in` arms (the catch-all * excluded)."""
    text = ENTRYPOINT.read_text()
    case_body = text[text.index('case "$role" in') : text.index("esac")]
    roles = set()
    for arm in re.findall(r"^\s*([A-Za-z0-9_|*-]+)\)\s*$", case_body, flags=re.MULTILINE):
        roles |= {pattern for pattern in arm.split("|") if pattern != "*"}
    return roles


def top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign):
            names |= {target.id for target in node.targets if isinstance(target, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
    return names


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        if line.strip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            keyword, _, rest = current.strip().partition(" ")
            logical.append((keyword.upper(), rest.strip()))
        current = ""
    return logical


def worker_queues() -> set[str]:
    """The queues the entrypoint's celery workers consume (every role's -Q, defaults expanded)."""
    text = ENTRYPOINT.read_text()
    found = re.findall(r'-Q\s+"?\$\{\w+:-([^}]*)\}"?', text) + re.findall(r"-Q\s+\"?([\w,]+)", text)
    assert found, "docker/entrypoint.sh starts no celery worker with -Q QUEUES"
    return {queue.strip() for queues in found for queue in queues.split(",") if queue.strip()}


def routed_queues() -> set[str]:
    """Queues the code sends tasks to: settings' routes and default queue, and tasks' queue=."""
    settings_text = SETTINGS.read_text()
    queues = set(re.findall(r"""["']queue["']\s*:\s*["']([\w.-]+)["']""", settings_text))
    queues |= set(re.findall(r"""CELERY_TASK_DEFAULT_QUEUE\s*=\s*["']([\w.-]+)["']""", settings_text))
    for tasks_module in ROOT.glob("*/**/tasks.py"):
        if ".venv" in tasks_module.parts:
            continue
        queues |= set(re.findall(r"""\bqueue\s*=\s*["']([\w.-]+)["']""", tasks_module.read_text()))
    return queues


# --- services -------------------------------------------------------------------------------------


def test_the_stack_has_every_service():
    missing = [name for name in SERVICES if name not in services()]
    assert not missing, f"docker-compose.yml lacks the services: {', '.join(missing)}"


@pytest.mark.parametrize("name", [name for name in SERVICES if name not in HEALTHCHECK_EXEMPT])
def test_each_long_running_service_has_a_healthcheck(name):
    healthcheck = services()[name].get("healthcheck") or {}
    assert healthcheck.get("test") and not healthcheck.get("disable"), f"service {name!r} has no healthcheck"
    assert healthcheck["test"] not in (["NONE"], "NONE"), f"service {name!r} disables its healthcheck"


def test_web_waits_for_a_healthy_database_and_broker():
    depends_on = services()["web"].get("depends_on") or {}
    wrong = [
        dependency
        for dependency in ("db", "redis")
        if not isinstance(depends_on, dict) or (depends_on.get(dependency) or {}).get("condition") != "service_healthy"
    ]
    assert not wrong, f"web must depend on these services with condition service_healthy: {', '.join(wrong)}"
    assert "llm" in depends_on, "web must depend on the llm service"


def test_the_model_server_reserves_an_nvidia_gpu():
    devices = services()["llm"].get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices") or []
    gpus = [
        device
        for device in devices
        if device.get("driver") == "nvidia"
        and "gpu" in (device.get("capabilities") or [])
        and ("count" in device or "device_ids" in device)
    ]
    assert gpus, f"llm must reserve an nvidia GPU under deploy.resources.reservations.devices, found {devices!r}"


def test_the_model_server_serves_the_model_the_app_asks_for():
    compose = services()
    llm_command = [resolve_defaults(part) for part in command_of(compose["llm"])]
    flags = {
        part: llm_command[index + 1]
        for index, part in enumerate(llm_command[:-1])
        if part.startswith("--") and not llm_command[index + 1].startswith("--")
    }
    for flag in ("--model", "--served-model-name", "--max-model-len", "--gpu-memory-utilization"):
        assert flag in flags, f"the llm command lacks {flag}: {llm_command}"
    for name in APP_SERVICES:
        environment = compose[name].get("environment") or {}
        assert resolve_defaults(environment.get("LLM_MODEL")) == flags["--served-model-name"], (
            f"{name}'s LLM_MODEL differs from the name vLLM serves ({flags['--served-model-name']})"
        )
        assert resolve_defaults(environment.get("LLM_CONTEXT_LENGTH")) == flags["--max-model-len"], (
            f"{name}'s LLM_CONTEXT_LENGTH differs from vLLM's --max-model-len ({flags['--max-model-len']})"
        )


#: vLLM's tool-call parsers for the model families .env.example documents (vLLM's Tool Calling page).
DOCUMENTED_PARSERS = {"mistral", "llama3_json", "hermes"}


def test_vllm_starts_with_tool_calling_and_the_app_uses_it():
    compose = services()
    llm_command = command_of(compose["llm"])
    assert "--enable-auto-tool-choice" in llm_command, f"vLLM must accept tool_choice=auto: {llm_command}"
    parser = llm_command[llm_command.index("--tool-call-parser") + 1]
    assert "${LLM_TOOL_CALL_PARSER" in parser and resolve_defaults(parser) in DOCUMENTED_PARSERS
    default_model = resolve_defaults(llm_command[llm_command.index("--model") + 1])
    assert default_model.startswith("mistralai/") and resolve_defaults(parser) == "mistral"
    example = (ROOT / ".env.example").read_text()
    for parser_name in DOCUMENTED_PARSERS:
        assert parser_name in example, f".env.example does not name the {parser_name} parser"
    for name in APP_SERVICES:
        environment = compose[name].get("environment") or {}
        assert resolve_defaults(environment.get("LLM_TOOLS")) == "true", f"{name} must run with LLM_TOOLS on"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_reach_the_stack_by_service_name(name):
    service = services()[name]
    environment = service.get("environment") or {}
    expected = {"DATABASE_URL": "@db:5432/", "REDIS_URL": "redis://redis:6379", "LLM_BASE_URL": "http://llm:8000/v1"}
    wrong = {key: environment.get(key) for key, part in expected.items() if part not in str(environment.get(key))}
    assert not wrong, f"{name} does not point at the compose services: {wrong}"
    env_file = service.get("env_file")
    assert env_file in (".env", [".env"]) or ".env" in (env_file or []), f"{name} must read .env (env_file)"


@pytest.mark.parametrize("name", ("web", "worker"))
def test_connector_folders_are_mounted_read_only_at_data(name):
    volumes = [str(volume) for volume in services()[name].get("volumes") or []]
    assert any(volume.endswith(":/data:ro") for volume in volumes), (
        f"{name} lacks a read-only mount at /data: {volumes}"
    )


def test_every_image_is_pinned_to_a_tag():
    unpinned = []
    for name, service in services().items():
        image = service.get("image")
        if image is None:
            if "build" not in service:
                unpinned.append(f"{name}: neither image nor build")
            continue
        image = resolve_defaults(image)
        if "@sha256:" in image:
            continue
        repository, _, tag = image.rpartition(":")
        if not repository or "/" in tag or not tag or tag == "latest":
            unpinned.append(f"{name}: {image}")
    assert not unpinned, f"images must be pinned to a version tag or digest: {unpinned}"


# --- documentation of variables ------------------------------------------------------------------


def test_every_compose_variable_is_documented():
    missing = sorted(compose_variables() - documented_variables())
    assert not missing, f"docker-compose.yml uses variables that .env.example does not document: {', '.join(missing)}"


def test_every_setting_read_from_the_environment_is_documented():
    read = settings_variables()
    assert len(read) > 10, "found suspiciously few environment reads in assistant/settings.py; the regex is stale"
    missing = sorted(read - documented_variables())
    assert not missing, (
        f"assistant/settings.py reads variables that .env.example does not document: {', '.join(missing)}"
    )


# Reads of the environment anywhere in the project's packages (the `make run` launcher, management
# commands): os.environ.get / os.getenv / env.get("X"), and the launcher's helpers.
CODE_VARIABLE = re.compile(
    r"(?:\benviron\.get\(|\bgetenv\(|\benv\.get\(|_is_set\(\s*\w+,|_int_env\(\s*\w+,"
    r"|env_(?:str|int|float|bool|list|choice)\()"
    r"""\s*["']([A-Z][A-Z0-9_]*)["']"""
)


def test_every_variable_the_code_reads_is_documented():
    read = {}
    for package in ("assistant", "connectors", "inference"):
        for path in (ROOT / package).rglob("*.py"):
            for name in CODE_VARIABLE.findall(path.read_text()):
                read.setdefault(name, str(path.relative_to(ROOT)))
    missing = sorted(set(read) - documented_variables())
    assert not missing, "the code reads variables that .env.example does not document: " + ", ".join(
        f"{name} ({read[name]})" for name in missing
    )


def test_every_entrypoint_variable_is_documented():
    text = ENTRYPOINT.read_text()
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text)) | set(
        re.findall(r"environ\.get\(\s*\"([A-Z0-9_]+)\"", text)
    )
    missing = sorted(used - documented_variables())
    assert not missing, f"docker/entrypoint.sh uses variables that .env.example does not document: {', '.join(missing)}"


def test_every_documented_variable_has_an_explanation():
    lines = ENV_EXAMPLE.read_text().splitlines()
    unexplained = []
    for index, line in enumerate(lines):
        match = ENV_LINE.match(line)
        if not match:
            continue
        previous = lines[index - 1] if index else ""
        if not previous.lstrip().startswith("#") or ENV_LINE.match(previous):
            unexplained.append(match.group(1))
    assert not unexplained, f".env.example has variables without a comment line above them: {', '.join(unexplained)}"


def test_env_example_documents_each_variable_once_and_sets_no_secret():
    names = [m.group(1) for line in ENV_EXAMPLE.read_text().splitlines() if (m := ENV_LINE.match(line))]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f".env.example documents these variables more than once: {', '.join(duplicates)}"
    values = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    )
    secrets = {name: value for name, value in values.items() if name in {"SECRET_KEY", "POSTGRES_PASSWORD"} and value}
    assert not secrets, f".env.example must leave secrets empty so nobody deploys a published one: {sorted(secrets)}"


# --- image and entrypoint ------------------------------------------------------------------------


@pytest.mark.parametrize("name", APP_SERVICES)
def test_build_context_and_dockerfile_exist(name):
    build = services()[name].get("build")
    assert build, f"{name} has no build section"
    context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
    dockerfile = context / ("Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile"))
    assert context.is_dir(), f"{name}'s build context {context} does not exist"
    assert dockerfile.is_file(), f"{name}'s Dockerfile {dockerfile} does not exist"


def test_every_file_the_dockerfile_copies_exists():
    build = services()["web"]["build"]
    context = ROOT / build.get("context", ".")
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    missing = []
    for instruction, arguments in dockerfile_instructions(dockerfile):
        if instruction not in ("COPY", "ADD"):
            continue
        parts = [part for part in shlex.split(arguments)]
        if any(part.startswith("--from") for part in parts):
            continue
        sources = [part for part in parts if not part.startswith("--")][:-1]
        missing += [source for source in sources if not list(context.glob(source))]
    assert not missing, f"{dockerfile.name} copies paths that the build context lacks: {', '.join(missing)}"


def test_the_image_starts_through_the_entrypoint():
    build = services()["web"]["build"]
    instructions = dict(dockerfile_instructions(ROOT / build.get("context", ".") / build["dockerfile"]))
    assert "/docker/entrypoint.sh" in instructions.get("ENTRYPOINT", ""), (
        "the Dockerfile's ENTRYPOINT is not docker/entrypoint.sh"
    )
    default_role = yaml.safe_load(instructions.get("CMD", "[]"))
    assert default_role and default_role[0] in entrypoint_roles(), (
        f"the Dockerfile's CMD {default_role} is no entrypoint role"
    )
    assert "8000" in instructions.get("EXPOSE", ""), "the Dockerfile does not EXPOSE 8000"
    assert instructions.get("USER") not in (None, "root", "0"), "the image must run as a non-root user"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_app_command_is_an_entrypoint_role(name):
    command = command_of(services()[name])
    roles = entrypoint_roles()
    assert command, f"{name} has no command"
    assert command[0] in roles, (
        f"{name}'s command {command[0]!r} is not handled by docker/entrypoint.sh ({sorted(roles)})"
    )


def test_the_entrypoint_handles_every_role():
    missing = {"web", "worker", "beat", "manage"} - entrypoint_roles()
    assert not missing, f"docker/entrypoint.sh does not handle: {', '.join(sorted(missing))}"


def test_what_the_entrypoint_starts_exists_in_the_project():
    text = ENTRYPOINT.read_text()
    problems = []
    for module, attribute in re.findall(r"uvicorn\s+([\w.]+):(\w+)", text):
        path = ROOT / Path(*module.split(".")).with_suffix(".py")
        if not path.is_file():
            problems.append(f"uvicorn module {module} ({path.relative_to(ROOT)} missing)")
        elif attribute not in top_level_names(path):
            problems.append(f"{path.relative_to(ROOT)} defines no {attribute}")
    for app in re.findall(r"celery\s+-A\s+([\w.]+)", text):
        path = ROOT / Path(*app.split(".")) / "celery.py"
        if not path.is_file():
            problems.append(f"celery app {app} ({path.relative_to(ROOT)} missing)")
        elif "app" not in top_level_names(path):
            problems.append(f"{path.relative_to(ROOT)} defines no `app`")
    if "manage.py" in text and not (ROOT / "manage.py").is_file():
        problems.append("manage.py missing")
    assert re.search(r"uvicorn\s", text) and re.search(r"celery\s+-A", text), (
        "the entrypoint starts neither uvicorn nor celery"
    )
    assert not problems, f"docker/entrypoint.sh starts things the project lacks: {'; '.join(problems)}"


def test_the_worker_consumes_every_queue_tasks_are_routed_to():
    routed = routed_queues()
    assert routed, "found no queue names in assistant/settings.py; the regex is stale"
    missing = sorted(routed - worker_queues())
    assert not missing, f"tasks are routed to queues no worker consumes: {', '.join(missing)}"


def test_the_entrypoint_script_is_executable():
    assert ENTRYPOINT.stat().st_mode & 0o111, "docker/entrypoint.sh is not executable (chmod +x)"


# --- what the app writes, and how many connections it opens ----------------------------------------

# Settings naming a folder, by what the app does there. A new path setting must be sorted here.
# web writes uploads, the worker reads them; both export the embedding model once into the cache
WRITTEN_PATH_SETTINGS = {"UPLOAD_ROOT", "EMBEDDING_CACHE_DIR"}
READ_ONLY_PATH_SETTINGS = {"CONNECTOR_DATA_DIR"}
PATH_SETTING = re.compile(r"""Path\(\s*env_(?:str|list)\(\s*["']([A-Z_]+)["']""")


def named_volumes_of(service: dict) -> dict[str, str]:
    """Container path -> named volume, for the service's named-volume mounts."""
    mounts = {}
    for volume in service.get("volumes") or []:
        source, _, rest = str(volume).partition(":")
        target = rest.split(":")[0]
        if source and not source.startswith((".", "/", "$")) and target:
            mounts[target] = source
    return mounts


def test_every_folder_setting_is_sorted_into_written_or_read_only():
    found = set(PATH_SETTING.findall(SETTINGS.read_text()))
    unsorted = found - WRITTEN_PATH_SETTINGS - READ_ONLY_PATH_SETTINGS
    assert not unsorted, f"say in this test whether the app writes to {sorted(unsorted)}"


@pytest.mark.parametrize("setting", sorted(WRITTEN_PATH_SETTINGS))
def test_every_folder_the_app_writes_is_one_named_volume_shared_by_web_and_worker(setting):
    compose = services()
    volumes = load_compose().get("volumes") or {}
    targets = set()
    for name in ("web", "worker"):
        path = resolve_defaults((compose[name].get("environment") or {}).get(setting) or "")
        assert path.startswith("/"), f"{name} must set {setting} to an absolute path in the container"
        mounts = named_volumes_of(compose[name])
        assert path in mounts, f"{name} writes {setting}={path}, which is on no named volume: {mounts}"
        assert mounts[path] in volumes, f"volume {mounts[path]!r} is not declared under volumes:"
        targets.add((path, mounts[path]))
    assert len(targets) == 1, f"web and worker must mount the same volume at the same path: {targets}"


@pytest.mark.parametrize("setting", sorted(WRITTEN_PATH_SETTINGS))
def test_the_image_makes_every_written_folder_the_app_users(setting):
    """A fresh named volume takes the owner of the image's folder: it must be the `app` user."""
    path = resolve_defaults((services()["web"].get("environment") or {}).get(setting) or "")
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    owned = re.findall(r"install -d -o app -g app[^\n]*", dockerfile)
    assert any(path in line.split() for line in owned), f"the Dockerfile must create {path} owned by app"
    assert dockerfile.index(owned[0]) < dockerfile.index("USER app")


def test_postgres_allows_every_connection_the_app_may_open():
    from assistant.connection_budget import WEB_POOL_SIZE_DEFAULT, ConnectionBudget

    compose = services()
    command = " ".join(resolve_defaults(part) for part in command_of(compose["db"]))
    match = re.search(r"max_connections=(\d+)", command)
    assert match, f"the db service must set max_connections: {command}"
    defaults = {m.group(1): m.group(2) for m in DEFAULT_EXPANSION.finditer(ENTRYPOINT.read_text()) if m.group(2)}
    budget = ConnectionBudget(
        web_processes=int(defaults["WEB_CONCURRENCY"]),
        pool_size=WEB_POOL_SIZE_DEFAULT,
        worker_processes=int(defaults["WORKER_CONCURRENCY"]),
        answer_threads=int(defaults["ANSWER_WORKER_CONCURRENCY"]),
    )
    assert budget.needed <= int(match.group(1)), budget.explain()


# --- forwarded headers -----------------------------------------------------------------------------


def _web_role_uvicorn_args(tmp_path, environ: dict[str, str]) -> list[str]:
    """The uvicorn command line docker/entrypoint.sh's `web` role runs (python and uvicorn faked)."""
    import os
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "python").write_text("#!/bin/sh\ncat >/dev/null 2>&1 || true\nexit 0\n")
    (bin_dir / "uvicorn").write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", **environ}
    result = subprocess.run(["sh", str(ROOT / "docker" / "entrypoint.sh"), "web"], env=env, capture_output=True,
                            text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_compose_gives_django_and_uvicorn_the_same_trusted_proxies_none_by_default(tmp_path):
    environment = services()["web"].get("environment") or {}
    assert "FORWARDED_ALLOW_IPS" in environment, "web must pass FORWARDED_ALLOW_IPS to Django and uvicorn"
    assert resolve_defaults(str(environment["FORWARDED_ALLOW_IPS"])) == ""
    args = _web_role_uvicorn_args(tmp_path, {"FORWARDED_ALLOW_IPS": ""})
    assert "--no-proxy-headers" in args and "--forwarded-allow-ips" not in args
    args = _web_role_uvicorn_args(tmp_path, {"FORWARDED_ALLOW_IPS": "172.16.0.0/12"})
    assert args[args.index("--forwarded-allow-ips") + 1] == "172.16.0.0/12"
