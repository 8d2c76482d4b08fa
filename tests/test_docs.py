"""The documentation: a short README, relative links that resolve, and no internal issue numbers.

The README is the front page; the detail lives under docs/ and in CONTRIBUTING.md. A reader can
follow every relative link (to a file that exists, and to a heading that exists in it), and no
page sends them to an issue tracker they cannot read ("issue 15", "#12"): pages state the content.
"""

import re
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "README.md"
README_MAX_LINES = 200
PAGES = [README, PROJECT / "CONTRIBUTING.md", *sorted((PROJECT / "docs").rglob("*.md"))]
LINKED = [README, *sorted((PROJECT / "docs").rglob("*.md")), PROJECT / "CONTRIBUTING.md"]

FENCE = re.compile(r"^```.*?^```[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
ISSUE_CITATION = re.compile(
    r"\b(?:issues?|tickets?|PRs?|pull requests?)[\s-]*#?\d+\b|(?<![\w&/#])#\d+\b", re.I)


def _prose(text: str) -> str:
    """The page without its code blocks and inline code (SQL, shell, paths such as `a #1.csv`)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _anchors(path: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for title in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        slug = re.sub(r"[^\w\- ]", "", title.lower().replace("`", "")).replace(" ", "-")
        out.add(slug)
    return out


def test_the_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


def test_the_docs_pages_exist():
    for page in ("how-it-works", "tables", "model-lifecycle", "data-contract", "configuration",
                 "databricks", "benchmarks"):
        assert (PROJECT / "docs" / f"{page}.md").is_file(), page
    assert (PROJECT / "CONTRIBUTING.md").is_file()


@pytest.mark.parametrize("page", LINKED, ids=lambda p: str(p.relative_to(PROJECT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target} (no {linked.relative_to(PROJECT) if linked.is_relative_to(PROJECT) else linked})")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target} (no heading #{anchor} in {linked.name})")
    assert not broken, f"{page.relative_to(PROJECT)}: broken links: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(PROJECT)))
def test_no_page_cites_an_issue_number(page):
    found = [m.group(0) for m in ISSUE_CITATION.finditer(_prose(page.read_text(encoding="utf-8")))]
    assert not found, f"{page.relative_to(PROJECT)} cites {found}: state the content instead"


def test_the_citation_check_catches_citations_and_spares_code():
    for cited in ("as issue 15 asked", "the issue-15 ratios", "see #12", "issues #3 and 4", "PR 7"):
        assert ISSUE_CITATION.search(_prose(cited)), cited
    for fine in ("a path such as `/data/a #1.csv`", "version 2", "[x](#personas)", "&#38;", "1e-6"):
        assert not ISSUE_CITATION.search(_prose(fine)), fine
