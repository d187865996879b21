"""Every interface catalogue (French, German, Spanish, Italian) is complete, and its compiled .mo says the same as
its .po; French is the reference the others are compared with."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import polib
import pytest
from django.conf import settings

LOCALE = Path(__file__).resolve().parent.parent / "locale"
CATALOGUES = ["fr", "de", "es", "it"]
PO = LOCALE / "fr" / "LC_MESSAGES" / "django.po"  # the reference: the others must hold the same messages
PLACEHOLDER = re.compile(r"%\(\w+\)[sdr]|\{\w+\}")


def _po(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / "django.po"


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


def _messages(language: str) -> set[tuple[str, str, str]]:
    return {
        (entry.msgctxt or "", entry.msgid, entry.msgid_plural or "")
        for entry in polib.pofile(str(_po(language)))
        if not entry.obsolete and entry.msgid
    }


def test_every_interface_language_has_a_catalogue_and_every_catalogue_is_offered():
    offered = {code for code, _ in settings.LANGUAGES} - {settings.LANGUAGE_CODE}
    shipped = {path.parent.parent.name for path in LOCALE.glob("*/LC_MESSAGES/django.po")}
    assert offered == shipped == set(CATALOGUES)


@pytest.mark.parametrize("language", CATALOGUES)
def test_every_message_has_a_real_translation(language):
    po = polib.pofile(str(_po(language)))
    untranslated = [e.msgid for e in po.untranslated_entries()]
    fuzzy = [e.msgid for e in po.fuzzy_entries()]
    assert not untranslated, f"translate these in {_po(language)}: {untranslated}"
    assert not fuzzy, f"check and un-fuzzy these in {_po(language)}: {fuzzy}"
    assert not po.metadata_is_fuzzy, f"the header of {_po(language)} is still marked fuzzy"


@pytest.mark.parametrize("language", CATALOGUES)
def test_the_catalogue_says_its_language_and_how_its_plurals_work(language):
    po = polib.pofile(str(_po(language)))
    assert po.metadata["Language"] == language
    assert po.metadata["Content-Type"] == "text/plain; charset=UTF-8"
    expected = "nplurals=2; plural=(n > 1);" if language == "fr" else "nplurals=2; plural=(n != 1);"
    assert po.metadata["Plural-Forms"] == expected
    for entry in po:
        if entry.msgid_plural and not entry.obsolete:
            assert sorted(entry.msgstr_plural) == [0, 1], entry.msgid


@pytest.mark.parametrize("language", ["de", "es", "it"])
def test_the_catalogue_holds_the_same_messages_as_the_french_one(language):
    french, other = _messages("fr"), _messages(language)
    assert not french - other, f"missing from {_po(language)}: {sorted(french - other)}"
    assert not other - french, f"in {_po(language)} but not in the French catalogue: {sorted(other - french)}"


@pytest.mark.parametrize("language", CATALOGUES)
def test_translations_keep_every_placeholder(language):
    for entry in polib.pofile(str(_po(language))):
        if entry.obsolete or not entry.msgid:
            continue
        expected = sorted(PLACEHOLDER.findall(entry.msgid_plural or entry.msgid))
        translations = entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]
        for text in translations:
            found = sorted(PLACEHOLDER.findall(text))
            if entry.msgid_plural:  # a singular form may spell the number out
                assert set(found) <= set(expected), (language, entry.msgid, text)
            else:
                assert found == expected, (language, entry.msgid, text)


@pytest.mark.parametrize("language", CATALOGUES)
def test_the_shipped_mo_is_compiled_from_the_current_po(language):
    po = polib.pofile(str(_po(language)))
    mo = polib.mofile(str(_po(language).with_suffix(".mo")))
    assert _entries(mo) == _entries(po), (
        f"locale/{language}/LC_MESSAGES/django.mo is out of date: "
        f"run `cd locale && python ../manage.py compilemessages -l {language}`"
    )


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="gettext is not installed")
@pytest.mark.parametrize("language", CATALOGUES)
def test_the_po_passes_msgfmt_checks(tmp_path, language):
    result = subprocess.run(
        ["msgfmt", "--check", "-o", str(tmp_path / "django.mo"), str(_po(language))], capture_output=True, text=True
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
        "new strings to translate: run `python manage.py makemessages -l fr -l de -l es -l it --ignore=.venv "
        f"--ignore=tests --ignore=bench`, translate them in locale/*/LC_MESSAGES/django.po, then compilemessages: "
        f"{missing}"
    )
