"""The README and docs/ say what the code does: every Python block runs, every
`purejaxvpg ...` command parses and validates with the real parser, every documented flag
exists, the tables are the definitions; the references the site writes from the code
(docs/reference.py) name every Config field, command and option, and the site builds
with `mkdocs build --strict`, which fails on a broken link.

A renamed flag, a removed module or a changed default breaks a test here, not a user.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import purejaxvpg as pjv
from purejaxvpg.tools.parser import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# flags of other programs that the docs quote (Slurm's sbatch, XLA_FLAGS)
OTHER_PROGRAMS_FLAGS = {"--gpus-per-node", "--ntasks-per-node", "--xla"}
# `<!-- file: PATH -->` just before a ```python block: the block is that file of the example
# project (later blocks import it), written, not run
FILE_MARK = re.compile(r"<!-- file: (\S+) -->\s*$")


def _text(path: Path) -> str:
    return path.read_text()


def fences(path: Path) -> list[tuple[str, str, str]]:
    """(language, body, the line before the fence) of every fenced block of a page."""
    lines, out, i = _text(path).splitlines(), [], 0
    while i < len(lines):
        if lines[i].startswith("```"):
            language, start = lines[i][3:].strip(), i
            i += 1
            while not lines[i].startswith("```"):
                i += 1
            out.append((language, "\n".join(lines[start + 1:i]), lines[start - 1] if start else ""))
        i += 1
    return out


def python_examples() -> list[tuple[str, int, dict, str]]:
    """(page, block number, files of the example project so far, code) of each ```python
    block to run."""
    examples, seen = [], set()
    for page in PAGES:
        files = {}
        for n, (language, body, before) in enumerate(fences(page)):
            if language != "python":
                continue
            mark = FILE_MARK.search(before)
            if mark:
                files[mark.group(1)] = body
            elif (body, tuple(files.items())) not in seen:  # a page repeating the README's example
                seen.add((body, tuple(files.items())))
                examples.append((page.relative_to(ROOT).as_posix(), n, dict(files), body))
    return examples


@pytest.mark.parametrize("page,number,files,code", python_examples(),
                         ids=[f"{p}#{n}" for p, n, _, _ in python_examples()])
def test_every_python_example_runs_in_a_fresh_interpreter(page, number, files, code, tmp_path):
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body + "\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{page} block {number}:\n{done.stderr[-3000:]}"


def _logical_lines(body: str) -> list[str]:
    """Lines of a shell block with backslash continuations joined."""
    return body.replace("\\\n", " ").splitlines()


def command_lines() -> list[tuple[str, str, bool]]:
    """(page, text, whether it is a command to run) of every `purejaxvpg ...`: in fenced
    blocks other than Python (after `&&`, `;`, `srun`, VAR=value, a quote; comments cut),
    and in inline code spans, which name a command or a flag in prose (never run)."""
    found = []
    for page in PAGES:
        name, text = page.relative_to(ROOT).as_posix(), _text(page)
        sources = [(re.sub(r"(^|\s)#.*$", "", line), True) for language, body, _ in fences(page)
                   if language != "python" for line in _logical_lines(body)]
        sources += [(span, False) for span in re.findall(r"(?<!`)`(purejaxvpg [^`\n]+)`", text)]
        for line, fenced in sources:
            for match in re.finditer(r"(?:^|&&|;|\bsrun|[\s\"'(=])\s*(purejaxvpg(?:\s[^;&\"'#)]*?)?)\s*"
                                     r"(?:$|&&|;|\"|'|\)|,|\s\|\s)", line):
                command = match.group(1).strip()
                found.append((name, command, fenced and not is_synopsis(command)))
    return found


def is_synopsis(command: str) -> bool:
    """A usage pattern (placeholders, alternatives, optional parts), not a command to run."""
    pattern = r"[\[\]<>]|\.\.\.|\w\|\w|(?<![\w/-])[A-Z][A-Z_]*(?![\w/-])|--help"
    return bool(re.search(pattern, command)) or len(command.split()) < 2


def _argv(command: str) -> list[str]:
    command = re.sub(r"\$\(\(.*?\)\)", "0", command)  # $((SLURM_ARRAY_TASK_ID * 64))
    command = re.sub(r"\$\{?\w+\}?", "0", command)
    return shlex.split(command)[1:]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in parser._actions for option in action.option_strings
            if option.startswith("--")}


def test_the_docs_hold_commands_of_every_kind():
    runnable = [c for _, c, run in command_lines() if run]
    assert {_argv(c)[0] for c in runnable} >= {"train", "sweep", "bench", "merge"}, runnable
    assert len(runnable) >= 10


@pytest.mark.parametrize("page,command,run", command_lines())
def test_every_documented_command_parses_and_validates(page, command, run):
    """The real parser; then the real checks that run before anything compiles: the Config,
    a sweep's grid, a bench scenario. A usage pattern's flags must exist on its command."""
    from purejaxvpg.tools import bench, flags, sweep

    parser = build_parser()
    argv = _argv(command)
    if not run:
        sub = _subparsers(parser).get(argv[0]) if argv and argv[0][0].isalpha() else parser
        assert sub is not None or argv[0] in ("COMMAND", "..."), f"{page}: unknown command in {command!r}"
        sub = sub or parser
        for token in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", command):
            assert token in _flags(sub) or token in _flags(parser), f"{page}: {token} in {command!r}"
        return
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        if argv == ["--version"] and stop.code == 0:
            return
        pytest.fail(f"{page}: {command!r} does not parse")
    if args.command in ("train", "sweep") and getattr(args, "resume", None) is None and args.config is None:
        config = flags.config_from_args(args)
        config.validate(own_env=":" in config.env_id)  # an import path names the reader's module
    if args.command == "sweep":
        sweep.parse_grid(args.grid or [])
        sweep.parse_ranges(args.range or [])
    if args.command == "bench":
        assert all(name in bench.SCENARIOS for name in args.scenario or []), command
        bench.parse_seeds(args.num_seeds)


def test_every_documented_flag_exists():
    """Each `--flag` the docs quote in code is a flag of some command (or of another program
    the docs quote, named in OTHER_PROGRAMS_FLAGS)."""

    parser = build_parser()
    known = set(_flags(parser)) | {f for sub in _subparsers(parser).values() for f in _flags(sub)}
    spans = [command for _, command, _ in command_lines()]
    spans += [span for page in PAGES for span in re.findall(r"`(--[^`\n]+)`", _text(page))]
    quoted = {flag for span in spans for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", span)}
    pytest_flags = {"--dist"}  # `-n 0`, `--dist loadfile`: pytest-xdist's, in the test command's notes
    assert not sorted(quoted - known - OTHER_PROGRAMS_FLAGS - pytest_flags)


def test_ci_runs_the_readme_commands():
    readme = _text(ROOT / "README.md")
    commands = re.findall(r"```bash\n(.+?)\n```", readme)[:2]
    ci = (ROOT / ".ci" / "run").read_text()
    assert len(commands) == 2
    for command in commands:
        assert command in ci, command


def test_metrics_tables_are_the_metric_definitions():
    """The metric tables list exactly UpdateMetrics and EvalMetrics, in order, each with the
    meaning its field declares: the one definition of every metric."""
    text = _text(ROOT / "docs" / "python.md")
    section = text[text.index("## Metrics"):]
    rows = re.findall(r"^\| `(\w+)` \| (.+) \|$", section, flags=re.M)
    expected = {**pjv.UpdateMetrics.meanings(), **pjv.EvalMetrics.meanings()}
    assert [name for name, _ in rows] == list(expected)
    assert dict(rows) == expected


def test_docs_links_resolve():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", _text(page)):
            assert (page.parent / target).exists(), f"{page.name}: link to {target}"


def _reference():
    """docs/reference.py, the module the site's hook writes the references with."""
    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "docs" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reference_pages_hold_their_markers():
    reference = _reference()
    assert reference.MARKERS["config"] in _text(ROOT / "docs" / "configuration.md")
    assert reference.MARKERS["cli"] in _text(ROOT / "docs" / "cli-reference.md")


def test_the_config_reference_names_every_field_with_its_default_and_doc():
    rows = re.findall(r"^\| `(\w+)` \| (.*?) \| `(.+?)` \| `(.*?)` \| (.*) \|$", _reference().config_reference(),
                      flags=re.M)
    fields = dataclasses.fields(pjv.Config)
    assert [name for name, *_ in rows] == [f.name for f in fields]
    for (name, flags, kind, default, meaning), field in zip(rows, fields):
        assert f"`--{name.replace('_', '-')}`" in flags or name == "env_params", name
        assert default == repr(field.default) and kind, name
        assert meaning, name  # an empty doc would leave a field unexplained


def test_the_cli_reference_names_every_command_and_option():
    """Each subcommand has its section, and each option --help shows (its flags, or a
    positional's metavar) has a row there, or for a Config flag, a place in the CONFIG
    FLAGS list; `--version` is named too."""

    reference = _reference()
    text = reference.render(reference.MARKERS["cli"])
    sections = dict(re.findall(r"^## `purejaxvpg (\w+)`\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S))
    parser = build_parser()
    assert list(sections) == list(_subparsers(parser))
    assert "`purejaxvpg --version`" in text
    missing = []
    for name, sub in _subparsers(parser).items():
        rows = re.findall(r"^\| `([^`]+)` \|", sections[name], flags=re.M)
        listed = {option.split()[0] for row in rows for option in row.split(", ")}
        listed |= set(re.findall(r"`(--[\w-]+)`", sections[name].partition("**CONFIG FLAGS**")[2]))
        for action in sub._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
                continue
            names = action.option_strings or [action.metavar or action.dest]
            missing += [f"{name} {option}" for option in names if option not in listed]
    assert not missing, f"in --help, not in the CLI reference: {missing}"


def _build_site(root: Path, site: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("mkdocs", reason="the site needs the [docs] extra: pip install -e '.[docs]'")
    pytest.importorskip("material", reason="the site needs the [docs] extra (mkdocs-material)")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def test_the_site_builds_strict(tmp_path):
    done = _build_site(ROOT, tmp_path / "site")
    assert done.returncode == 0, done.stderr[-3000:]
    configuration = (tmp_path / "site" / "configuration" / "index.html").read_text()
    assert all(f"<code>{f.name}</code>" in configuration for f in dataclasses.fields(pjv.Config))
    assert (tmp_path / "site" / "index.html").exists()  # the README, as the home page


def test_a_broken_link_fails_the_site_build(tmp_path):
    """What the strict build is for: a link to a page that is not there stops it."""
    copy = tmp_path / "repository"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "runs", "site", "build", "*.egg-info",
                                                              "__pycache__", ".pytest_cache"))
    page = copy / "docs" / "cli.md"
    page.write_text(_text(page).replace("(devices.md)", "(no-such-page.md)", 1))
    done = _build_site(copy, tmp_path / "site")
    assert done.returncode != 0 and "no-such-page.md" in done.stderr, done.stderr[-3000:]
