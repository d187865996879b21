"""The case form: the staff's words in, CaseData out (services.clean has the last word)."""

from __future__ import annotations

import json

from django import forms
from django.utils.translation import gettext_lazy as _

from assistant.chat.models import Assistant
from assistant.evaluation.models import EvaluationProfile
from assistant.evaluation.profiles import KNOBS, current_values
from assistant.evaluation.services import CaseData


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _words(text: str) -> list[str]:
    return [part.strip() for part in (text or "").replace("\n", ",").split(",") if part.strip()]


def source_label(source: dict) -> str:
    kind = _("Query result") if source.get("kind") == "query" else _("Document")
    where = source.get("connector") or ""
    name = source.get("title") or source.get("external_id") or source.get("sql") or ""
    return f"{kind}: {name}" + (f" ({where})" if where and where != name else "")


def source_value(source: dict) -> str:
    return json.dumps({k: v for k, v in source.items() if k != "cited"}, sort_keys=True)


class CaseForm(forms.Form):
    question = forms.CharField(label=_("Question"), widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)
    keep_history = forms.BooleanField(label=_("Ask it after the earlier turns shown above"), required=False)
    assistant = forms.ModelChoiceField(label=_("Assistant"), queryset=Assistant.objects.all(), required=False,
                                       empty_label=_("The default assistant"))
    expected_answer = forms.CharField(label=_("Expected answer"), widget=forms.Textarea(attrs={"rows": 4}),
                                      required=False, max_length=20_000)
    alternative_answers = forms.CharField(label=_("Other accepted answers, one per line"), required=False,
                                          widget=forms.Textarea(attrs={"rows": 2}))
    expected_sources = forms.MultipleChoiceField(label=_("Expected sources"), required=False,
                                                 widget=forms.CheckboxSelectMultiple,
                                                 help_text=_("Those the answer saw or queried; cited ones come checked."))
    more_documents = forms.CharField(
        label=_("More expected documents, one per line"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Each document's id in its source (e.g. travel-2024.md), optionally after its connector and "
                    "a colon: Handbook: travel-2024.md"))
    must_contain = forms.CharField(label=_("Must contain, one phrase per line"), required=False,
                                   widget=forms.Textarea(attrs={"rows": 2}))
    must_not_contain = forms.CharField(label=_("Must not contain, one phrase per line"), required=False,
                                       widget=forms.Textarea(attrs={"rows": 2}))
    expect_refusal = forms.BooleanField(
        label=_("The right answer is that the documents do not say"), required=False)
    tags = forms.CharField(label=_("Tags, separated by commas"), required=False, max_length=1000)
    groups = forms.CharField(label=_("Asked as a member of these groups, separated by commas"), required=False,
                             max_length=2000)

    def __init__(self, *args, candidates: list[dict] = (), history: list[dict] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.history = list(history)
        self.fields["expected_sources"].choices = [(source_value(s), source_label(s)) for s in candidates]

    @staticmethod
    def initial_from(data: CaseData) -> dict:
        return {
            "question": data.question, "keep_history": bool(data.history), "assistant": data.assistant,
            "expected_answer": data.expected_answer, "alternative_answers": "\n".join(data.alternative_answers),
            "expected_sources": [source_value(s) for s in data.expected_sources],
            "must_contain": "\n".join(data.must_contain), "must_not_contain": "\n".join(data.must_not_contain),
            "expect_refusal": data.expect_refusal, "tags": ", ".join(data.tags), "groups": ", ".join(data.groups),
        }

    def case_data(self, *, base: CaseData | None = None) -> CaseData:
        c = self.cleaned_data
        sources = [json.loads(value) for value in c["expected_sources"]]
        for line in _lines(c["more_documents"]):
            connector, sep, external = line.rpartition(":") if ":" in line and not line.startswith("/") else ("", "", line)
            sources.append({"kind": "document", "connector": connector.strip(), "external_id": external.strip(),
                            "title": ""})
        base = base or CaseData(question="")
        return CaseData(
            question=c["question"], history=self.history if c["keep_history"] else [], assistant=c["assistant"],
            expected_answer=c["expected_answer"], alternative_answers=_lines(c["alternative_answers"]),
            expected_sources=sources, must_contain=_lines(c["must_contain"]),
            must_not_contain=_lines(c["must_not_contain"]), expect_refusal=c["expect_refusal"],
            tags=_words(c["tags"]), groups=_words(c["groups"]), origin=base.origin, external_id=base.external_id,
            source_message=base.source_message,
        )


class RunForm(forms.Form):
    """Start a run from the page."""

    tag = forms.CharField(label=_("Tag"), required=False, max_length=50)
    assistant = forms.ModelChoiceField(label=_("Cases of"), queryset=Assistant.objects.all(), required=False,
                                       empty_label=_("Every assistant"))
    answered_by = forms.ModelChoiceField(label=_("Answered by"), queryset=Assistant.objects.all(), required=False,
                                         empty_label=_("Each case's own assistant"))
    profile = forms.ModelChoiceField(label=_("Settings profile"), queryset=EvaluationProfile.objects.all(),
                                     required=False, empty_label=_("The installation's settings"))
    judge = forms.BooleanField(label=_("Have the model judge each answer"), required=False)
    label = forms.CharField(label=_("Name of the run"), required=False, max_length=200)


class ProfileForm(forms.Form):
    """A settings profile: a name, and a value for each setting it changes (empty: as configured).
    Values are checked by profiles.settings_clean, which names the setting at fault."""

    name = forms.CharField(label=_("Name"), max_length=100)
    description = forms.CharField(label=_("Description"), required=False, max_length=1000,
                                  widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        now = current_values()
        for knob in KNOBS:
            field = (forms.ChoiceField(choices=[("", "—"), *((c, c) for c in knob.choices)]) if knob.kind == "choice"
                     else forms.CharField(max_length=knob.max_chars))
            field.required, field.label = False, f"{knob.label} ({knob.setting})"
            field.help_text = _("Now: %(value)s") % {"value": "—" if now[knob.setting] is None else now[knob.setting]}
            self.fields[knob.setting] = field

    @staticmethod
    def initial_from(profile: EvaluationProfile) -> dict:
        return {"name": profile.name, "description": profile.description, **profile.values}

    def values(self) -> dict:
        return {knob.setting: self.cleaned_data.get(knob.setting) for knob in KNOBS}
