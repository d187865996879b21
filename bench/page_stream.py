"""The chat page's own stream, with answers written by the web request (ANSWER_RUNNER=request) and
by the answers worker (ANSWER_RUNNER=worker), measured in the same run by bench/chat.py: the app's
own time to the first token (before the model is asked, plus from the model's first token to the
browser), the model's own time taken out through the recording proxy. Target: the worker path adds
no more than 20 ms at the median."""

from __future__ import annotations

import statistics
import time

import httpx

from tests.e2e.sse import login


def _page_first_token(client: httpx.Client, question: str) -> tuple[float, float | None]:
    """(when the page opened the stream, seconds to its first token); the stream is read to its end."""
    headers = {"X-CSRFToken": client.cookies["csrftoken"], "Referer": str(client.base_url)}
    created = client.post("/chat/api/conversations/", json={}, headers=headers)
    created.raise_for_status()
    submitted = client.post(f"/chat/api/c/{created.json()['id']}/messages/", json={"content": question},
                            headers=headers)
    submitted.raise_for_status()
    started, first, event = time.monotonic(), None, None
    with client.stream("GET", submitted.json()["stream_url"], headers={"Accept": "text/event-stream"}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "token" and first is None:
                first = time.monotonic() - started
            elif line.startswith("data:") and event == "error":
                raise RuntimeError(f"the answer failed: {line}")
    return started, first


def measure_runners(urls: dict[str, str], *, username: str, password: str, proxy, questions: list[str],
                    runs: int, reset_cache) -> dict:
    """`urls`: runner name -> a web process's URL. Alternates the runners, `runs` answers each."""
    clients = {name: login(url, username, password) for name, url in urls.items()}
    own: dict[str, list[float]] = {name: [] for name in urls}
    ttft: dict[str, list[float]] = {name: [] for name in urls}
    for i in range(runs):
        order = list(urls) if i % 2 == 0 else list(reversed(urls))
        for name in order:
            reset_cache()
            recorded = len(proxy.records)
            started, first = _page_first_token(clients[name], questions[i % len(questions)])
            record = proxy.records[recorded]  # the answer's request to the model (its title comes after)
            if first is None or record["first_token_out"] is None:
                continue
            ttft[name].append(first)
            own[name].append((record["arrived"] - started) + (started + first - record["first_token_out"]))
    for client in clients.values():
        client.close()
    medians = {name: statistics.median(values) * 1000 if values else None for name, values in own.items()}
    added = (medians["worker"] - medians["request"]) if None not in medians.values() else None
    return {
        "runs": runs,
        **{f"{name}_app_own_ms_median": round(value, 1) if value is not None else None for name, value in medians.items()},
        **{f"{name}_ttft_ms_median": round(statistics.median(v) * 1000, 1) if v else None for name, v in ttft.items()},
        **{f"{name}_app_own_ms_samples": [round(x * 1000, 1) for x in v] for name, v in own.items()},
        "worker_added_ms": round(added, 1) if added is not None else None,
        "target_added_ms": 20,
        "meets_target": added is not None and added <= 20,
    }
