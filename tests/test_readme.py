"""The README is the product's front door: it must stay in step with the settings."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_documented_setting_is_listed_in_the_readme():
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in documented if f"`{name}`" not in readme)
    assert not missing, f"README.md's settings table lacks: {', '.join(missing)}"


def test_readme_shows_the_three_commands_and_a_screenshot_that_exists():
    readme = (ROOT / "README.md").read_text()
    for command in ("make run", "make test", "docker compose up"):
        assert command in readme
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert images and all((ROOT / image).exists() for image in images)


# --- the Layout section -------------------------------------------------------------------------

PACKAGES = ("assistant", "connectors", "inference")
#: Django's own folders inside an app: not packages of the product's design.
DJANGO_FOLDERS = {"migrations", "management", "commands", "templatetags", "__pycache__"}


def _layout_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Layout"):]
    return section[section.index("```") + 3:section.index("```", section.index("```") + 3)]


def _listed_paths() -> set[str]:
    """Folders and files named in the Layout block, with nesting from the indentation."""
    listed, parents = set(), []
    for line in _layout_block().strip("\n").splitlines():
        depth = (len(line) - len(line.lstrip(" "))) // 2
        names = [word for word in line.split() if word.endswith("/") or word.endswith((".yml", ".py"))]
        taken = []
        for name in names:
            if line.index(name) > 30 + depth * 2:  # words of the description
                break
            taken.append(name)
        parents = parents[:depth]
        for name in taken:
            listed.add("/".join([*parents, name.rstrip("/")]))
        if taken:
            parents = parents + [taken[0].rstrip("/")]
    return listed


def test_the_layout_names_only_what_exists():
    missing = sorted(path for path in _listed_paths() if not (ROOT / path).exists())
    assert not missing, f"README's Layout names what does not exist: {missing}"


def test_the_layout_lists_every_package():
    packages = {
        str(path.parent.relative_to(ROOT))
        for top in PACKAGES
        for path in (ROOT / top).rglob("__init__.py")
        if not DJANGO_FOLDERS & set(path.relative_to(ROOT).parts)
    }
    unlisted = sorted(packages - _listed_paths())
    assert not unlisted, f"README's Layout lacks these packages: {unlisted}"
