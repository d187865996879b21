"""Settings profiles: named overrides of the answer and search settings the pipeline reads on
every question, so the same cases can be run under two of them and compared ("A/B").

Only the settings below can be in a profile: each is read when a question is answered (not when
the index is built: chunk size and CHUNK_CONTEXT need a re-index, so a profile cannot change
them), and each is bounded as the environment variable is (assistant/settings.py). The model
server's address and key are not among them: a profile picks a model, not where requests go.
An assistant's own model, temperature or answer length wins over a profile's, as in the chat.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _, gettext_lazy

from assistant.evaluation.models import EvaluationProfile

MAX_NAME_CHARS = 100
MAX_DESCRIPTION_CHARS = 1000


@dataclass(frozen=True)
class Knob:
    """One setting a profile may change, and what values it takes."""

    setting: str
    label: str
    kind: str  # "int", "float", "choice" or "text"
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    max_chars: int = 200


KNOBS: tuple[Knob, ...] = (
    Knob("LLM_MODEL", gettext_lazy("Model"), "text"),
    Knob("LLM_TEMPERATURE", gettext_lazy("Temperature"), "float", 0.0, 2.0),
    Knob("LLM_MAX_TOKENS", gettext_lazy("Longest answer (tokens)"), "int", 16, 32_768),
    Knob("RAG_SEARCH_MODE", gettext_lazy("Search mode"), "choice", choices=("hybrid", "dense", "fulltext")),
    Knob("RAG_TOP_K", gettext_lazy("Passages retrieved"), "int", 1, 50),
    Knob("RAG_CANDIDATES", gettext_lazy("Candidates per side before fusion"), "int", 1, 1000),
    Knob("RAG_FUSION", gettext_lazy("Fusion"), "choice", choices=("rrf", "borda", "minmax", "dbsf")),
    Knob("RAG_RRF_K", gettext_lazy("RRF k"), "int", 1, 1000),
    Knob("RAG_DENSE_WEIGHT", gettext_lazy("Weight of the vector side"), "float", 0.0, 100.0),
    Knob("RAG_FULLTEXT_WEIGHT", gettext_lazy("Weight of the full-text side"), "float", 0.0, 100.0),
    Knob("RAG_CONTEXT_TOKENS", gettext_lazy("Tokens of passages in the prompt"), "int", 100, 1_000_000),
    Knob("RAG_NEIGHBOUR_CHUNKS", gettext_lazy("Neighbouring chunks on each side of a hit"), "int", 0, 20),
)
KNOB_BY_SETTING = {knob.setting: knob for knob in KNOBS}


class ProfileInvalid(ValueError):
    """A profile a staff member must fix; the message names the setting."""


def _value(knob: Knob, raw):
    """`raw` as the setting's type within its bounds, or ProfileInvalid naming it."""
    if knob.kind == "text":
        value = " ".join(str(raw).split())
        if not value or len(value) > knob.max_chars:
            raise ProfileInvalid(_("%(setting)s: give a name of at most %(limit)s characters.")
                                 % {"setting": knob.setting, "limit": knob.max_chars})
        return value
    if knob.kind == "choice":
        if str(raw) not in knob.choices:
            raise ProfileInvalid(_("%(setting)s must be one of %(choices)s.")
                                 % {"setting": knob.setting, "choices": ", ".join(knob.choices)})
        return str(raw)
    try:
        if isinstance(raw, bool):
            raise ValueError
        value = int(raw) if knob.kind == "int" else float(raw)
        if knob.kind == "int" and isinstance(raw, float) and raw != value:
            raise ValueError
    except (TypeError, ValueError):
        raise ProfileInvalid(_("%(setting)s must be a number.") % {"setting": knob.setting}) from None
    if value != value or not knob.minimum <= value <= knob.maximum:  # NaN fails both
        raise ProfileInvalid(_("%(setting)s must be between %(minimum)s and %(maximum)s.")
                             % {"setting": knob.setting, "minimum": knob.minimum, "maximum": knob.maximum})
    return value


def settings_clean(values: dict) -> dict:
    """The profile's overrides, typed and bounded; an empty value means "as configured"."""
    if not isinstance(values, dict):
        raise ProfileInvalid(_("A profile's settings are a mapping of setting names to values."))
    out = {}
    for name, raw in values.items():
        knob = KNOB_BY_SETTING.get(name)
        if knob is None:
            raise ProfileInvalid(_("%(setting)s cannot be changed by a profile.") % {"setting": name})
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        out[name] = _value(knob, raw.strip() if isinstance(raw, str) else raw)
    return out


def current_values() -> dict:
    """What each setting a profile may change is now (shown beside the profile's fields)."""
    return {knob.setting: getattr(settings, knob.setting, None) for knob in KNOBS}


def _fields(*, name: str, description: str, values: dict) -> dict:
    name = " ".join(str(name or "").split())
    if not name or len(name) > MAX_NAME_CHARS:
        raise ProfileInvalid(_("Give the profile a name of at most %(limit)s characters.") % {"limit": MAX_NAME_CHARS})
    description = str(description or "").strip()
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise ProfileInvalid(_("The description is limited to %(limit)s characters.")
                             % {"limit": MAX_DESCRIPTION_CHARS})
    return {"name": name, "description": description, "values": settings_clean(values)}


def _saved(profile: EvaluationProfile) -> EvaluationProfile:
    try:
        with transaction.atomic():
            profile.save()
    except IntegrityError:
        raise ProfileInvalid(_("Another profile is named “%(name)s”.") % {"name": profile.name}) from None
    return profile


def profile_create(*, name: str, description: str = "", values: dict, user=None) -> EvaluationProfile:
    return _saved(EvaluationProfile(**_fields(name=name, description=description, values=values), created_by=user))


def profile_update(*, profile: EvaluationProfile, name: str, description: str = "", values: dict) -> EvaluationProfile:
    for field, value in _fields(name=name, description=description, values=values).items():
        setattr(profile, field, value)
    return _saved(profile)


def profile_delete(*, profile: EvaluationProfile) -> None:
    """Runs made with it keep its name and settings in their configuration."""
    profile.delete()


def run_overrides(*, profile: EvaluationProfile | None, extra: dict | None = None) -> dict:
    """The settings a run is made with: the profile's, then `--set`'s (which win)."""
    return {**(settings_clean(profile.values) if profile else {}), **(extra or {})}
