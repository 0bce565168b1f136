"""The design lives in docs/: every `docs/<file>.md#<section>` that code, templates or docs cite names
a heading that exists, and nothing cites the team notes that are not in the repository."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SKIP_DIRS = {".venv", ".git", "node_modules", "var", "staticfiles", "media", "__pycache__"}
SUFFIXES = {".py", ".md", ".html", ".txt", ".sh", ".toml", ".cfg", ".in", ".js", ".css", ".yml"}
CITATION = re.compile(r"docs/([\w-]+\.md)#([\w-]+)")
LINK = re.compile(r"\]\(([\w-]+\.md)?#([^)\s]+)\)")
# The team's shared notes outside the repository, which code once cited (spelt apart: this file
# would otherwise cite them itself).
OUTSIDE_NOTES = re.compile(r"\b(?:DOMAIN|DESIGN|PROTOCOLS)" + r"\.md\b")


def project_files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        wanted = path.suffix in SUFFIXES or path.name == "Makefile"
        if wanted and path.is_file() and not SKIP_DIRS.intersection(path.relative_to(ROOT).parts):
            found.append(path)
    return found


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    in_code = False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        base = slug(line.lstrip("#"))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def test_every_cited_section_of_docs_exists():
    known = {doc.name: anchors(doc) for doc in DOCS.glob("*.md")}
    missing = []
    for path in project_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        cited = CITATION.findall(text)
        if path.parent == DOCS:
            cited += [(name or path.name, anchor) for name, anchor in LINK.findall(text)]
        for name, anchor in cited:
            if anchor not in known.get(name, ()):
                missing.append(f"{path.relative_to(ROOT)}: docs/{name}#{anchor}")
    assert not missing, "cited sections that docs/ does not have:\n" + "\n".join(sorted(set(missing)))


def test_nothing_cites_notes_outside_the_repository():
    citing = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in project_files()
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE_NOTES.search(line)
    ]
    assert not citing, "cite docs/architecture.md, docs/domain.md or docs/protocols.md instead:\n" + "\n".join(citing)
