"""The connector form, generated from each source kind's pydantic config schema.

Simple settings (text, numbers, switches, choices, lists of words) become ordinary form
fields; anything nested (e.g. a database source's list of datasets) is edited as JSON.
Secrets are password inputs that never render a value: a stored secret never travels
back to the browser, and leaving the input empty keeps it.

The form only parses input. Validation of the settings is the service's
(connectors.services.connector_save); `add_service_errors` puts its complaints next to
the fields they are about.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from django import forms
from django.contrib.auth.models import Group

from connectors.dataset_editor import dataset_error_place
from connectors.models import Connector
from connectors.request_input import RequestInvalid, check_json_value
from connectors.sources.base import Source

KEEP_SECRET_HELP = "Leave empty to keep the stored value."
COMMON_FIELDS = ("name", "is_public", "groups", "sync_interval", "is_paused")

_SETTINGS_PREFIX = re.compile(r"^Invalid [\w .-]+ settings:\s*")
_SEGMENT_SPLIT = re.compile(r";\s+(?=[A-Za-z_]\w*(?:\.\w+)*: )")
_LOC = re.compile(r"^([A-Za-z_]\w*(?:\.\w+)*): (.*)$", re.S)


class PrettyJSONField(forms.JSONField):
    """A JSON textarea that shows its value indented, so nested settings stay readable.

    Its value must be storable: no NUL or lone surrogate in any string, no NaN (request_input)."""

    def to_python(self, value):
        converted = super().to_python(value)
        try:
            check_json_value(converted)
        except RequestInvalid as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None
        return converted

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        if value is None:
            return ""
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


class StringListField(forms.CharField):
    """A list of short strings, typed one per line or separated by commas."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value):
        if isinstance(value, (list, tuple)):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [item.strip() for item in re.split(r"[\n,]", text) if item.strip()]


def _humanize(name: str, title: str | None) -> str:
    auto = name.replace("_", " ").title()
    if title and title != auto:
        return title
    for suffix, unit in (("_s", "seconds"), ("_ms", "milliseconds")):
        if name.endswith(suffix) and len(name) > len(suffix):
            return f"{name[: -len(suffix)].replace('_', ' ').capitalize()} ({unit})"
    return name.replace("_", " ").capitalize()


def _resolve(schema: dict, root: dict) -> tuple[dict, bool]:
    """(the field's own schema, whether it accepts null); unwraps Optional[...] and $ref."""
    nullable = False
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        non_null = [option for option in options if option.get("type") != "null"]
        nullable = len(non_null) < len(options)
        if len(non_null) == 1:
            merged = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            merged.update(non_null[0])
            schema = merged
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = root.get("$defs", {}).get(ref.rsplit("/", 1)[-1], {})
        merged = dict(target)
        merged.update({k: v for k, v in schema.items() if k != "$ref"})
        schema = merged
    return schema, nullable


def _kind_of(schema: dict) -> str:
    """How a property is edited: text, secret, choice, integer, number, boolean, list, json."""
    if schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf"):
        return "json"
    kind = schema.get("type")
    if "enum" in schema and kind in ("string", "integer", None):
        return "choice"
    if kind == "string":
        return "secret" if schema.get("format") == "password" or schema.get("writeOnly") else "text"
    if kind in ("integer", "number", "boolean"):
        return kind
    if kind == "array":
        items = schema.get("items") or {}
        if items.get("type") == "string" and "enum" not in items and "$ref" not in items:
            return "list"
    return "json"


class ConnectorForm(forms.Form):
    """Name, access and schedule of a connector, plus the settings of its source kind."""

    name = forms.CharField(max_length=200, label="Name", help_text="Shown to admins and in answers' citations.")
    is_public = forms.BooleanField(
        required=False, label="Everyone can see its documents",
        help_text="Otherwise only members of the groups below see them in answers.",
    )
    groups = forms.ModelMultipleChoiceField(
        queryset=Group.objects.order_by("name"), required=False, label="Groups with access",
        widget=forms.CheckboxSelectMultiple,
    )
    sync_interval = forms.IntegerField(
        required=False, min_value=1, max_value=60 * 24 * 365, label="Sync every (minutes)",
        help_text="Empty: sync only when you press “Sync now”.",
    )
    is_paused = forms.BooleanField(
        required=False, label="Paused", help_text="A paused connector is not synced on schedule."
    )

    def __init__(self, *args, source_class: type[Source], connector: Connector | None = None, **kwargs):
        self.source_class = source_class
        self.connector = connector
        if connector is not None and "initial" not in kwargs:
            kwargs["initial"] = self._initial_from(connector)
        super().__init__(*args, **kwargs)
        self.hidden_settings = tuple(getattr(source_class, "form_hidden_fields", ()))
        self.secret_names = tuple(source_class.secret_fields)
        #: form field name -> (setting name, kind, schema)
        self.setting_fields: dict[str, tuple[str, str, dict]] = {}
        #: Errors about datasets, placed for the dataset editor (dataset_editor.dataset_error_place).
        self.dataset_errors: list[dict] = []
        self._add_setting_fields()

    # --- building ------------------------------------------------------------------------
    def _initial_from(self, connector: Connector) -> dict:
        interval = connector.sync_interval
        initial = {
            "name": connector.name,
            "is_public": connector.is_public,
            "groups": list(connector.groups.all()) if connector.pk else [],
            "sync_interval": int(interval.total_seconds() // 60) if interval else None,
            "is_paused": connector.is_paused,
        }
        secrets = set(self.source_class.secret_fields)
        for key, value in (connector.config or {}).items():
            if key not in secrets:  # belt and braces: secrets are never stored in config
                initial[self.field_name_for(key)] = value
        return initial

    @staticmethod
    def field_name_for(setting: str) -> str:
        return f"config_{setting}" if setting in COMMON_FIELDS else setting

    def _add_setting_fields(self) -> None:
        root = self.source_class.Config.model_json_schema()
        required = set(root.get("required", []))
        properties = dict(root.get("properties", {}))
        for secret in self.secret_names:  # a secret kept outside the schema still gets an input
            properties.setdefault(secret, {"type": "string", "title": secret})
        editing = self.connector is not None and self.connector.pk is not None
        for setting, raw in properties.items():
            if setting in self.hidden_settings:
                continue
            schema, nullable = _resolve(raw, root)
            kind = "secret" if setting in self.secret_names else _kind_of(schema)
            field = self._field_for(setting, kind, schema, is_required=setting in required and not nullable)
            if kind == "secret" and editing:
                field.required = False
                field.help_text = " ".join(filter(None, [schema.get("description"), KEEP_SECRET_HELP]))
            name = self.field_name_for(setting)
            self.fields[name] = field
            self.setting_fields[name] = (setting, kind, schema)
            if name not in self.initial and "default" in schema and kind != "secret":
                self.initial[name] = schema["default"]

    def _field_for(self, setting: str, kind: str, schema: dict, *, is_required: bool) -> forms.Field:
        common = {
            "label": _humanize(setting, schema.get("title")),
            "help_text": schema.get("description", ""),
            "required": is_required,
        }
        if kind == "secret":
            widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
            return forms.CharField(widget=widget, strip=False, **common)
        if kind == "boolean":
            common["required"] = False
            return forms.BooleanField(**common)
        if kind == "integer":
            return forms.IntegerField(min_value=schema.get("minimum"), max_value=schema.get("maximum"), **common)
        if kind == "number":
            return forms.FloatField(min_value=schema.get("minimum"), max_value=schema.get("maximum"), **common)
        if kind == "choice":
            choices = [(value, str(value)) for value in schema["enum"]]
            if not is_required:
                choices = [("", "—"), *choices]
            return forms.TypedChoiceField(choices=choices, coerce=type(schema["enum"][0]), empty_value=None, **common)
        if kind == "list":
            if not common["help_text"]:
                common["help_text"] = "One per line, or separated by commas."
            return StringListField(**common)
        if kind == "json":
            if not common["help_text"]:
                common["help_text"] = "JSON."
            return PrettyJSONField(widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}), **common)
        multiline = schema.get("multiline") or setting.endswith(("query", "sql"))
        widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}) if multiline else forms.TextInput
        return forms.CharField(max_length=schema.get("maxLength"), widget=widget, **common)

    # --- reading --------------------------------------------------------------------------
    def service_kwargs(self, *, fixed_settings: dict | None = None) -> dict[str, Any]:
        """The keyword arguments of connector_save, from valid input."""
        data = self.cleaned_data
        config: dict[str, Any] = {}
        secrets: dict[str, str] = {}
        for name, (setting, kind, schema) in self.setting_fields.items():
            value = data.get(name)
            if kind == "secret":
                if value:
                    secrets[setting] = value
                continue
            if kind == "boolean":
                config[setting] = bool(value)
            elif value in (None, ""):
                continue  # the schema's default applies
            elif kind == "list" and value == [] and schema.get("default") is None:
                continue
            else:
                config[setting] = value
        config.update(fixed_settings or {})
        minutes = data.get("sync_interval")
        return {
            "name": data["name"],
            "config": config,
            "secrets": secrets,
            "is_public": bool(data.get("is_public")),
            "groups": list(data.get("groups") or []),
            "sync_interval": dt.timedelta(minutes=minutes) if minutes else None,
            "is_paused": bool(data.get("is_paused")),
        }

    def add_service_errors(self, errors: dict[str, str]) -> None:
        """Show ConnectorInvalid's errors next to the fields they are about."""
        for key, message in errors.items():
            target = self._field_for_setting(key)
            if target:
                self.add_error(target, _tidy(message))
            elif key == "config" or key not in self.fields:
                self._add_settings_error(message)
            else:
                self.add_error(key, _tidy(message))

    def _field_for_setting(self, key: str) -> str | None:
        if key in COMMON_FIELDS:
            return key
        for name, (setting, _kind, _schema) in self.setting_fields.items():
            if setting == key:
                return name
        return None

    def _submitted_json(self, name: str) -> Any:
        return _json_or_none(self.data.get(name))

    def _add_settings_error(self, message: str) -> None:
        body = _SETTINGS_PREFIX.sub("", message.strip())
        placed = False
        for segment in _SEGMENT_SPLIT.split(body):
            match = _LOC.match(segment.strip())
            if match:
                loc, text = match.groups()
                if loc == "config":
                    self.add_error(None, _tidy(text))
                    placed = True
                    continue
                top, _, rest = loc.partition(".")
                target = self._field_for_setting(top)
                if target and top == "datasets":
                    self.dataset_errors.append(dataset_error_place(rest, text, self._submitted_json(target)))
                if target:
                    self.add_error(target, f"{_describe_loc(rest)}: {_tidy(text)}" if rest else _tidy(text))
                    placed = True
                    continue
            if segment.strip():
                self.add_error(None, _tidy(segment.strip()))
                placed = True
        if not placed:
            self.add_error(None, _tidy(message))


def _json_or_none(text) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _describe_loc(loc: str) -> str:
    """"0.query" -> "Item 1, query": where inside a nested setting the problem is."""
    parts = [f"item {int(part) + 1}" if part.isdigit() else part for part in loc.split(".")]
    text = ", ".join(parts)
    return text[:1].upper() + text[1:]


def _tidy(message: str) -> str:
    """Pydantic's "Value error, must be ..." reads better as "Must be ..."."""
    text = message.strip()
    for prefix in ("Value error, ", "Assertion failed, "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text[:1].upper() + text[1:] if text else text
