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
