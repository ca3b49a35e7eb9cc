"""The README's defaults table and commands stay in step with the code and with CI."""

import dataclasses
import re
from pathlib import Path

import purejaxvpg as pjv

ROOT = Path(__file__).resolve().parents[1]


def test_readme_defaults_table_matches_config():
    text = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", text, flags=re.M))
    for field in dataclasses.fields(pjv.Config):
        assert rows.get(field.name) == repr(field.default), field.name


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(.+?)\n```", readme)[:2]
    ci = (ROOT / ".ci" / "run").read_text()
    assert len(commands) == 2
    for command in commands:
        assert command in ci, command


def test_readme_metrics_tables_are_the_metric_definitions():
    """The README's metric tables list exactly UpdateMetrics and EvalMetrics, in order,
    each with the meaning its field declares: the one definition of every metric."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Metrics"):text.index("## The algorithm")]
    rows = re.findall(r"^\| `(\w+)` \| (.+) \|$", section, flags=re.M)
    expected = {**pjv.UpdateMetrics.meanings(), **pjv.EvalMetrics.meanings()}
    assert [name for name, _ in rows] == list(expected)
    assert dict(rows) == expected
