"""The French catalogue is complete, and the compiled .mo shipped with it says the same as the .po."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import polib
import pytest

LOCALE = Path(__file__).resolve().parent.parent / "locale"
PO = LOCALE / "fr" / "LC_MESSAGES" / "django.po"
MO = LOCALE / "fr" / "LC_MESSAGES" / "django.mo"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")


def _entries(catalogue) -> dict[tuple[str, str | None], object]:
    out = {}
    for entry in catalogue:
        if entry.obsolete or not entry.msgid:
            continue
        if entry.msgid_plural:
            value = tuple(entry.msgstr_plural[k] for k in sorted(entry.msgstr_plural))
        else:
            value = entry.msgstr
        out[(entry.msgctxt or "", entry.msgid)] = value
    return out


def test_every_message_has_a_real_french_translation():
    po = polib.pofile(str(PO))
    untranslated = [e.msgid for e in po.untranslated_entries()]
    fuzzy = [e.msgid for e in po.fuzzy_entries()]
    assert not untranslated, f"translate these in {PO}: {untranslated}"
    assert not fuzzy, f"check and un-fuzzy these in {PO}: {fuzzy}"


def test_translations_keep_every_placeholder():
    for entry in polib.pofile(str(PO)):
        if entry.obsolete or not entry.msgid:
            continue
        expected = sorted(PLACEHOLDER.findall(entry.msgid_plural or entry.msgid))
        translations = entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]
        for text in translations:
            found = sorted(PLACEHOLDER.findall(text))
            if entry.msgid_plural:  # a singular form may spell the number out
                assert set(found) <= set(expected), (entry.msgid, text)
            else:
                assert found == expected, (entry.msgid, text)


def test_the_shipped_mo_is_compiled_from_the_current_po():
    po, mo = polib.pofile(str(PO)), polib.mofile(str(MO))
    assert _entries(mo) == _entries(po), (
        "locale/fr/LC_MESSAGES/django.mo is out of date: run `python manage.py compilemessages -l fr`"
    )


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="gettext is not installed")
def test_the_po_passes_msgfmt_checks(tmp_path):
    result = subprocess.run(
        ["msgfmt", "--check", "-o", str(tmp_path / "django.mo"), str(PO)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


# --- every translatable string in the code is in the catalogue (no gettext tools needed) ---

ROOT = LOCALE.parent
GETTEXT_NAMES = {"_", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy", "pgettext", "pgettext_lazy"}
TEMPLATE_CALL = re.compile(r"\b(n?gettext)\(u'((?:[^'\\]|\\.)*)'(?:\s*,\s*u'((?:[^'\\]|\\.)*)')?")


def _python_msgids() -> set[str]:
    import ast

    found = set()
    for package in ("assistant", "connectors", "inference"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
                    continue
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                first = 1 if name.startswith("p") else 0
                if name in GETTEXT_NAMES and len(node.args) > first and isinstance(node.args[first], ast.Constant):
                    if isinstance(node.args[first].value, str):
                        found.add(node.args[first].value)
    return found


def _template_msgids() -> set[str]:
    import ast

    from django.utils.translation.template import templatize

    found = set()
    for path in (ROOT / "templates").rglob("*.html"):
        for match in TEMPLATE_CALL.finditer(templatize(path.read_text(), origin=str(path))):
            found.add(ast.literal_eval(f"'{match.group(2)}'"))
    return found


def test_every_translatable_string_is_in_the_french_catalogue():
    known = {entry.msgid for entry in polib.pofile(str(PO)) if not entry.obsolete}
    in_python, in_templates = _python_msgids(), _template_msgids()
    assert len(in_python) > 50 and len(in_templates) > 100  # the extraction itself still works
    missing = sorted((in_python | in_templates) - known)
    assert not missing, (
        "new strings to translate: run `python manage.py makemessages -l fr --ignore=.venv --ignore=tests "
        f"--ignore=bench`, translate them in {PO.relative_to(ROOT)}, then compilemessages: {missing}"
    )
