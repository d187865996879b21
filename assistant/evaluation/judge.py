"""The judge: the configured model grades an answer on a fixed rubric, as JSON parsed robustly.

Faithfulness: is every claim of the answer supported by the passages it cites? Agreement: does
it say what the expected answer says? Each from 1 to 5, stored as (grade - 1) / 4 with the
judge's reasons. A reply that holds no grade is stored as such ("unparsed"), never guessed.
"""

from __future__ import annotations

import json
import re

RUBRIC = """You grade an assistant's answer to an employee's question. Reply with one JSON object only:
{"faithfulness": 1-5, "agreement": 1-5, "reasons": "one or two sentences"}

faithfulness: 5 = every claim is supported by the cited passages; 3 = some claims are unsupported;
1 = the answer contradicts or invents beyond the passages. An answer that says the documents do not
hold the answer, and cites nothing, is faithful (5).
agreement: 5 = says the same as the expected answer; 3 = partly; 1 = disagrees or misses it. When no
expected answer is given, grade 3."""

PASSAGE_CHARS = 1200
REASON_CHARS = 1000


def judge_messages(*, question: str, expected: str, answer: str, passages: list[str]) -> list[dict]:
    cited = "\n\n".join(f"[{n}] {text[:PASSAGE_CHARS]}" for n, text in enumerate(passages, start=1)) or "(none)"
    content = (
        f"Question:\n{question}\n\nExpected answer:\n{expected or '(none given)'}\n\n"
        f"Cited passages:\n{cited}\n\nAnswer to grade:\n{answer or '(empty)'}"
    )
    return [{"role": "system", "content": RUBRIC}, {"role": "user", "content": content}]


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_GRADE = {name: re.compile(rf"{name}\W{{0,4}}(\d(?:\.\d+)?)", re.IGNORECASE) for name in ("faithfulness", "agreement")}
_REASONS = re.compile(r"reasons?\W{0,4}(.+)", re.IGNORECASE | re.DOTALL)


def _objects(text: str):
    """Candidate JSON objects in a reply: fenced blocks first, then each balanced {...}."""
    for block in _FENCE.findall(text):
        yield block.strip()
    depth, start = 0, None
    for index, char in enumerate(text):
        if char == "{":
            depth, start = depth + 1, index if depth == 0 else start
        elif char == "}" and depth:
            depth -= 1
            if depth == 0 and start is not None:
                yield text[start:index + 1]


def _load(candidate: str) -> dict | None:
    for attempt in (candidate, _TRAILING_COMMA.sub(r"\1", candidate),
                    _TRAILING_COMMA.sub(r"\1", candidate).replace("'", '"')):
        try:
            value = json.loads(attempt)
        except ValueError:
            continue
        if isinstance(value, dict):
            return {str(k).strip().lower(): v for k, v in value.items()}
    return None


def _grade(value) -> float | None:
    try:
        number = float(str(value).strip().split("/")[0])
    except (TypeError, ValueError):
        return None
    if not 1 <= number <= 5:
        return None
    return round((number - 1) / 4, 4)


def parse_verdict(reply: str) -> dict:
    """{"faithfulness": 0..1 | None, "agreement": 0..1 | None, "reasons": str, "parsed": bool, "raw": str}."""
    reply = str(reply or "")
    found = next((obj for obj in map(_load, _objects(reply)) if obj and ({"faithfulness", "agreement"} & set(obj))),
                 None)
    if found is None:  # prose: "Faithfulness: 4, agreement: 5. Reasons: ..."
        found = {name: m.group(1) for name, pattern in _GRADE.items() if (m := pattern.search(reply))}
        reasons = _REASONS.search(reply)
        found["reasons"] = reasons.group(1).strip() if reasons else ""
    verdict = {name: _grade(found.get(name)) for name in ("faithfulness", "agreement")}
    reasons = found.get("reasons") or found.get("reason") or ""
    verdict["reasons"] = (reasons if isinstance(reasons, str) else json.dumps(reasons))[:REASON_CHARS]
    verdict["parsed"] = any(v is not None for v in (verdict["faithfulness"], verdict["agreement"]))
    verdict["raw"] = reply[:REASON_CHARS]
    return verdict
