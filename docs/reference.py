"""The site's references, written from the code at build time so they cannot drift from it:
the configuration reference from `Config`'s fields (name, type, default, `metadata["doc"]`)
and the command-line reference from the real argparse parser (`parser.build_parser`).

Plain functions returning Markdown, no mkdocs: docs/hooks.py puts them in the pages and
tests/test_docs.py calls them directly.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import re

import purejaxvpg as pjv
from purejaxvpg.tools.parser import build_parser

# what a page writes to have a reference put in its place
MARKERS = {"config": "<!-- generated: config -->", "cli": "<!-- generated: cli -->"}
USAGE_WIDTH = 100  # argparse would wrap at the terminal's width: the site must not depend on it


def _escape(text: str) -> str:
    """Help text as Markdown table cell content: code spans kept, and outside them the
    characters Markdown or a table would read (`*`, `<`, `|`, ...) escaped."""
    parts = re.split(r"(`[^`]*`)", text)
    for i in range(0, len(parts), 2):  # even parts are outside code spans
        part = parts[i].replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;")
        parts[i] = re.sub(r"([*_|\[\]])", r"\\\1", part)
    return "".join(parts).replace("\n", " ")


def _code(text: str) -> str:
    """`text` as one code span, whatever backticks it holds."""
    fence, pad = ("``", " ") if "`" in text else ("`", "")
    return f"{fence}{pad}{text}{pad}{fence}"


def _config_flags() -> dict[str, list[str]]:
    """Config field name -> its flags, read from `train`'s parser (every field is a flag)."""
    train = next(sub for name, sub, _ in _commands(build_parser()) if name == "train")
    fields = {f.name for f in dataclasses.fields(pjv.Config)}
    return {a.dest: a.option_strings for a in train._actions if a.dest in fields}


def _type(annotation) -> str:
    """A field's type as its annotation reads (config.py's annotations are strings)."""
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


def config_reference() -> str:
    """One table row per Config field, in declaration order."""
    flags = _config_flags()
    rows = ["| field | flag | type | default | meaning |", "| --- | --- | --- | --- | --- |"]
    for field in dataclasses.fields(pjv.Config):
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default
        rows.append(
            f"| {_code(field.name)} | {', '.join(_code(f) for f in flags.get(field.name, []))} "
            f"| {_code(_type(field.type))} | {_code(repr(default))} | {_escape(field.metadata.get('doc', ''))} |"
        )
    return "\n".join(rows) + "\n"


def _commands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser, str]]:
    """(name, parser, one-line help) of every subcommand, in the parser's order."""
    chooser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help or "" for choice in chooser._choices_actions}
    return [(name, sub, helps.get(name, "")) for name, sub in chooser.choices.items()]


def _documented(action: argparse.Action) -> bool:
    return action.help != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction)


def _option(action: argparse.Action) -> str:
    """How an option or positional is written: its flags and its value's metavar."""
    metavar = action.metavar or (action.dest.upper() if action.option_strings else action.dest)
    if not action.option_strings:
        return f"{metavar} [{metavar} ...]" if action.nargs == "+" else metavar
    value = "" if action.nargs == 0 else f" {metavar}"
    return ", ".join(f"{flag}{value}" for flag in action.option_strings)


def _help(action: argparse.Action, prog: str) -> str:
    """The help text as `--help` prints it (argparse's `%(default)s` and `%%` expanded)."""
    return (action.help or "") % {**vars(action), "prog": prog}


def cli_reference() -> str:
    """Every subcommand: what it does, its usage, and its options group by group. The
    Config flags (the same on `train` and `sweep`) are listed by name only: the
    configuration reference documents each."""
    fields = {f.name for f in dataclasses.fields(pjv.Config)}
    out = []
    for name, sub, summary in _commands(build_parser()):
        config_actions = [a for a in sub._actions if a.dest in fields]
        for action in config_actions:  # left out of the usage line, listed below
            action.help = argparse.SUPPRESS
        sub.formatter_class = functools.partial(argparse.HelpFormatter, width=USAGE_WIDTH)
        lines = sub.format_usage().removeprefix("usage: ").rstrip().splitlines()
        usage = "\n".join([lines[0], *(line.removeprefix(" " * len("usage: ")) for line in lines[1:])])
        if config_actions:
            usage += " [CONFIG FLAGS]"
        out += [f"## `purejaxvpg {name}`", "", _escape(summary), "", "```", usage, "```", ""]
        for group in sub._action_groups:
            actions = [a for a in group._group_actions if _documented(a)]
            if actions:
                out += [f"**{_escape(group.title)}**", ""]
                if group.description:
                    out += [_escape(group.description), ""]
                out += ["| argument | meaning |", "| --- | --- |"]
                out += [f"| {_code(_option(a))} | {_escape(_help(a, sub.prog))} |" for a in actions]
                out.append("")
        if config_actions:
            flags = ", ".join(_code(f) for a in config_actions for f in a.option_strings)
            out += ["**CONFIG FLAGS**: every `purejaxvpg.Config` field, documented with its default in the",
                    f"[configuration reference](configuration.md#reference): {flags}.", ""]
    return "\n".join(out)


def version_line() -> str:
    """`purejaxvpg --version`, the bare command's one option besides `--help`."""
    parser = build_parser()
    version = next(a for a in parser._actions if isinstance(a, argparse._VersionAction))
    return f"`purejaxvpg --version` prints `{version.version}` and exits."


def render(markdown: str) -> str:
    """`markdown` with every marker replaced by the reference it names."""
    if MARKERS["config"] in markdown:
        markdown = markdown.replace(MARKERS["config"], config_reference())
    if MARKERS["cli"] in markdown:
        markdown = markdown.replace(MARKERS["cli"], version_line() + "\n\n" + cli_reference())
    return markdown
