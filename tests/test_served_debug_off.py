"""The site as `make run` serves it: uvicorn, DEBUG off, static files from WhiteNoise.

A real uvicorn process is started with the launcher's defaults and command line (no DEBUG,
no SECRET_KEY in the environment, as on a bare machine), against the test database.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from assistant import launcher

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    environ = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "FORWARDED_ALLOW_IPS")}
    launcher.apply_local_defaults(environ, tmp_path_factory.mktemp("data"))
    port = _free_port()
    log = tmp_path_factory.mktemp("log") / "web.log"
    with log.open("w") as out:
        process = subprocess.Popen(launcher.web_command(environ, "127.0.0.1", port), cwd=ROOT, env=environ,
                                   stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"uvicorn did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    yield base
    process.terminate()
    process.wait(timeout=10)


def test_a_missing_page_shows_no_url_patterns_or_settings(site):
    response = httpx.get(f"{site}/no-such-page/", timeout=10)
    assert response.status_code == 404
    for leak in ("URLconf", "urlpatterns", "DEBUG = True", "assistant.urls", "Traceback"):
        assert leak not in response.text


def test_the_sign_in_page_loads_its_css_and_js(site):
    page = httpx.get(f"{site}/accounts/login/", timeout=10)
    assert page.status_code == 200
    assets = re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', page.text)
    assert any(a.endswith(".css") for a in assets) and any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        response = httpx.get(f"{site}{asset}", timeout=10)
        assert response.status_code == 200, asset
        expected = "text/css" if asset.endswith(".css") else "javascript"
        assert expected in response.headers["content-type"], (asset, response.headers["content-type"])
        assert len(response.content) > 0
