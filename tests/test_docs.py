"""The documentation: a README short enough to read, and links that lead somewhere.

Relative links and images in README.md and docs/*.md must name files that exist, and an
``#anchor`` must name a heading of its target, slugged as GitHub does. External links are
checked for their form only: the tests run offline.
"""

from __future__ import annotations

import pathlib
import re
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README_LIMIT = 10_000

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) and ![alt](target); the target may be wrapped in <>, and may carry a "title".
_INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s)]*)(?:\s+\"[^\"]*\")?\s*\)"
)
_AUTOLINK = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.-]*:[^\s<>]*)>")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(\S+)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines of a markdown text outside fenced code blocks, numbered from 1."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None and match and match.group(1)[0] == fence[0]:
            if len(match.group(1)) >= len(fence) and not line.strip(fence[0] + " "):
                fence = None
        elif fence is None:
            lines.append((number, line))
    return lines


def links(text: str) -> list[tuple[int, str]]:
    """Every link and image target of a markdown text, with its line number.

    Code (fenced blocks, inline spans) is not markdown, so links written there are not
    links: a shell comment ``# [x](y)`` or a Python list must not be checked.
    """
    found = []
    for number, line in prose_lines(text):
        line = _CODE_SPAN.sub("", line)
        reference = _REFERENCE.match(line)
        if reference:
            found.append((number, reference.group(1).strip("<>")))
            continue
        found += [(number, m.group(1).strip("<>")) for m in _INLINE_LINK.finditer(line)]
        found += [(number, m.group(1)) for m in _AUTOLINK.finditer(line)]
    return found


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text, lowercased, punctuation
    removed (letters, digits, ``_``, ``-`` and spaces kept), spaces turned into ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML renders as nothing
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"(?<!\w)_+|_+(?!\w)", "", text)  # _emphasis_, not snake_case
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a markdown text's headings; repeated slugs get -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    for _, line in prose_lines(text):
        match = _HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def _external_problem(target: str) -> str | None:
    parts = urllib.parse.urlsplit(target)
    if parts.scheme not in ("http", "https"):
        return f"unsupported scheme {parts.scheme!r}"
    if not parts.netloc or parts.netloc.startswith(".") or " " in target:
        return "malformed URL"
    return None


def link_problems(path: pathlib.Path) -> list[str]:
    """What is wrong with the links of one markdown file, one line per broken link."""
    text = path.read_text(encoding="utf-8")
    problems = []
    for number, target in links(text):
        where = f"{path.name}:{number}: {target!r}"
        if _SCHEME.match(target):
            problem = _external_problem(target)
            if problem:
                problems.append(f"{where}: {problem}")
            continue
        file_part, _, anchor = urllib.parse.unquote(target).partition("#")
        if not file_part and not anchor:
            problems.append(f"{where}: empty link")
            continue
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{where}: no such file")
        elif anchor:
            if linked.suffix != ".md" or not linked.is_file():
                problems.append(f"{where}: an anchor into something that is not markdown")
            elif anchor not in anchors(linked.read_text(encoding="utf-8")):
                problems.append(f"{where}: no heading with anchor #{anchor}")
    return problems


def _documents() -> list[pathlib.Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_readme_is_at_most_10000_characters():
    length = len((ROOT / "README.md").read_text(encoding="utf-8"))
    assert length <= README_LIMIT, f"README.md has {length} characters; move details to docs/"


@pytest.mark.parametrize("path", _documents(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_links_resolve(path):
    problems = link_problems(path)
    assert not problems, "\n".join(problems)


def test_readme_links_every_docs_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    readme = {target.partition("#")[0] for _, target in links(text)}
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert pages - readme == set()


def test_github_slugs():
    assert github_slug("Quick start") == "quick-start"
    assert (
        github_slug("Beyond the book: 98.93% with a nearest-neighbour model")
        == "beyond-the-book-9893-with-a-nearest-neighbour-model"
    )
    assert (
        github_slug("Processes, without docker (`cluster/`)") == "processes-without-docker-cluster"
    )
    assert github_slug("The **report** job's `metrics.json`") == "the-report-jobs-metricsjson"
    assert github_slug("`compute_each` and [links](x.md)") == "compute_each-and-links"
    assert github_slug("Deskew → PCA") == "deskew--pca"


def test_links_skip_code_and_see_every_form():
    text = (
        'See [a](a.md), ![img](pic.png "title") and <https://example.org/x>.\n'
        "`[not](code.md)` in a span.\n"
        "```bash\n"
        "echo '[not](fenced.md)'\n"
        "```\n"
        "[ref]: ref.md#top\n"
    )
    assert links(text) == [
        (1, "a.md"),
        (1, "pic.png"),
        (1, "https://example.org/x"),
        (6, "ref.md#top"),
    ]


def test_anchors_skip_code_and_number_repeats():
    text = "# Top\n```bash\n# not a heading\n```\n## Top\n## Top\n"
    assert anchors(text) == {"top", "top-1", "top-2"}


def test_a_broken_page_is_reported(tmp_path):
    (tmp_path / "good.md").write_text("# Good page\n\n## Some section\n", encoding="utf-8")
    (tmp_path / "pic.png").write_bytes(b"\x89PNG")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[fine](good.md#some-section), [fine too](#page), ![fine](pic.png),"
        " [web](https://www.dask.org)\n"
        "[missing file](nowhere.md)\n"
        "[missing anchor](good.md#no-such-section)\n"
        "[missing own anchor](#nope)\n"
        "![missing image](missing.png)\n"
        "[bad url](https://)\n"
        "[odd scheme](ftp://example.org/file)\n"
        "```\n[inside a fence](not-checked.md)\n```\n",
        encoding="utf-8",
    )
    problems = link_problems(page)
    assert [p.split(": ", 1)[0] for p in problems] == [
        "page.md:4",
        "page.md:5",
        "page.md:6",
        "page.md:7",
        "page.md:8",
        "page.md:9",
    ]
    assert "no such file" in problems[0] and "#no-such-section" in problems[1]
    assert "malformed URL" in problems[4] and "unsupported scheme 'ftp'" in problems[5]


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ```python blocks of a markdown text, each with the line it starts on."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(text.splitlines(), start=1):
        if current is None and line.strip() == "```python":
            current, start = [], number + 1
        elif current is not None and line.strip() == "```":
            blocks.append((start, "\n".join(current) + "\n"))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_python_blocks_are_found_with_their_lines():
    text = "# T\n```python\nx = 1\n```\n```bash\nls\n```\n\n```python\ny = x\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n"), (10, "y = x\n")]


def test_the_library_examples_run(tmp_path, monkeypatch):
    """docs/library.md's examples, as written, in order, in one namespace (on the digits)."""
    monkeypatch.chdir(tmp_path)  # the saved-model example writes model.joblib here
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)  # the embedded cluster
    path = ROOT / "docs" / "library.md"
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    namespace: dict = {"__name__": "library_md"}
    for line, source in blocks:
        # Blank lines in front: a traceback names the line of library.md.
        exec(compile("\n" * (line - 1) + source, str(path), "exec"), namespace)
    assert (tmp_path / "model.joblib").is_file()
    assert namespace["final"].accuracy(namespace["ds"].y_test) > 0.9


def test_the_architecture_lists_the_floors_in_the_codes_order():
    """docs/architecture.md's table of floors is mnistdist/__init__.py's list, in its order
    (the order tests/test_layout.py enforces on the imports)."""
    import mnistdist

    floors = re.findall(r"^- ``(\w+)``", mnistdist.__doc__, flags=re.M)
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \|", text, flags=re.M)
    assert [name for _, name in rows] == floors
    assert [int(number) for number, _ in rows] == list(range(1, len(floors) + 1))
