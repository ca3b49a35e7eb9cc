"""mkdocs hooks (`hooks:` in mkdocs.yml): the site is the repository's own Markdown.

The README is the home page; the repository files the pages link to (CHANGELOG.md, the
benchmark tables and figures, ...) are put in the site at their repository paths, with the
links rewritten, so a page reads the same on GitHub and on the site and a link that
resolves in neither still fails `mkdocs build --strict`. The reference markers
(`<!-- generated: config -->`, `<!-- generated: cli -->`) become the references written
from the code (docs/reference.py).
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import reference  # docs/reference.py: mkdocs puts a hook's folder on sys.path while loading it
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
HOME = "README.md"  # the repository's front page, the site's index.md
LINK = re.compile(r"(\]\()([^)\s]+)(\))")  # a Markdown link or image target

# site path -> repository path of every page, set by on_files (a `mkdocs serve` rebuild too)
_origin: dict[str, str] = {}


def _repository_target(origin: str, target: str) -> str | None:
    """The repository path a relative link of the file at `origin` points to; None for an
    absolute link, a URL or an anchor of the same page."""
    if not target or target.startswith(("#", "/")) or re.match(r"^[a-z][a-z0-9+.-]*:", target):
        return None
    return posixpath.normpath(posixpath.join(posixpath.dirname(origin), target.split("#")[0]))


def _site_path(repository_path: str) -> str:
    if repository_path == HOME:
        return "index.md"
    return repository_path.removeprefix("docs/") if repository_path.startswith("docs/") else repository_path


def on_files(files, config):
    """Add the README as index.md and, transitively, every repository file outside docs/
    that a page links to."""
    _origin.clear()
    _origin.update({f.src_uri: "docs/" + f.src_uri for f in files.documentation_pages()})
    queue = [*_origin.values(), HOME]
    while queue:
        path = queue.pop()
        site = _site_path(path)
        if site not in _origin:
            if files.get_file_from_path(site) is not None:
                raise ValueError(f"docs/{site} and the repository's {path} would be the same page")
            files.append(File.generated(config, site, abs_src_path=str(ROOT / path)))
            _origin[site] = path
        if not path.endswith(".md"):
            continue
        for _, target, _ in LINK.findall((ROOT / path).read_text()):
            linked = _repository_target(path, target)
            if linked and not linked.startswith(("docs/", "../")) and linked != ".." and (ROOT / linked).is_file():
                if _site_path(linked) not in _origin:
                    queue.append(linked)
    return files


def _rewrite(markdown: str, page_path: str) -> str:
    """Links to repository files as links to their place in the site; any other link as it is
    (mkdocs then reports one that points nowhere)."""
    origin = _origin[page_path]

    def site_link(match: re.Match) -> str:
        target = match.group(2)
        linked = _repository_target(origin, target)
        if linked is None or _site_path(linked) not in _origin:
            return match.group(0)
        fragment = target[len(target.split("#")[0]):]
        relative = posixpath.relpath(_site_path(linked), posixpath.dirname(page_path) or ".")
        return f"{match.group(1)}{relative}{fragment}{match.group(3)}"

    return LINK.sub(site_link, markdown)


def on_page_markdown(markdown, page, config, files):
    return reference.render(_rewrite(markdown, page.file.src_uri))
