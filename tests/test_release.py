"""A version users can cite: one version everywhere (pyproject, the installed metadata,
`__version__`, `--version`, the changelog's newest entry, CITATION.cff), a CITATION.cff that
citation tools accept, and the license pyproject.toml declares.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import re
from pathlib import Path

import yaml

import purejaxvpg

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_one_version_everywhere(capsys):
    from purejaxvpg.tools import cli

    version = _pyproject()["version"]
    assert purejaxvpg.__version__ == importlib.metadata.version("purejaxvpg") == version
    try:
        cli.main(["--version"])
    except SystemExit as stop:
        assert stop.code == 0
    assert capsys.readouterr().out.strip() == f"purejaxvpg {version}"
    newest = re.search(r"^## (\S+) — (\d{4}-\d{2}-\d{2})$", (ROOT / "CHANGELOG.md").read_text(), flags=re.M)
    assert newest and newest.group(1) == version


def test_citation_cff_has_the_required_fields_and_this_release():
    """The Citation File Format 1.2.0's required keys, with the types its schema gives them."""
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert isinstance(cff["message"], str) and cff["message"]
    assert isinstance(cff["title"], str) and cff["title"]
    assert cff["authors"] and all(isinstance(a, dict) and ("name" in a or "family-names" in a)
                                  for a in cff["authors"])
    assert str(cff["version"]) == _pyproject()["version"]
    released = cff["date-released"]
    released = released if isinstance(released, datetime.date) else datetime.date.fromisoformat(released)
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {cff['version']} — {released.isoformat()}" in changelog
    assert cff["license"] == _pyproject()["license"]["text"]


def test_the_license_file_is_the_declared_license():
    text = (ROOT / "LICENSE").read_text()
    assert _pyproject()["license"]["text"] == "Apache-2.0"
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
