from django import template

from assistant.evaluation.forms import source_label
from assistant.evaluation.labels import METRIC_LABELS

register = template.Library()


@register.filter
def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name)


@register.filter
def score(value) -> str:
    """0.8333 -> "0.83"; missing -> "—"."""
    return "—" if not isinstance(value, (int, float)) else f"{value:.2f}"


@register.filter
def source_name(source: dict) -> str:
    return source_label(source)


@register.filter
def get(mapping, key):
    return mapping.get(key) if isinstance(mapping, dict) else None
