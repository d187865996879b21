"""The metrics' names as staff read them (translated)."""

from django.utils.translation import gettext_lazy as _

METRIC_LABELS = {
    "passed": _("Cases passed"),
    "source_retrieved": _("Expected source retrieved"),
    "source_cited": _("Expected source cited"),
    "citation_validity": _("Citation validity"),
    "must_contain": _("Must contain"),
    "must_not_contain": _("Must not contain"),
    "refusal": _("Refusal when expected"),
    "f1": _("Token F1"),
    "judge_faithfulness": _("Judge: faithfulness"),
    "judge_agreement": _("Judge: agreement"),
    "error": _("Error"),
}
