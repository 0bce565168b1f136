"""Fail when a catalogue of ours has an untranslated or fuzzy entry, or a translation whose
placeholders differ from its source (`make lint`, scripts/lint.sh).

The catalogues are locale/<lang>/LC_MESSAGES/*.po and <app>/locale/<lang>/LC_MESSAGES/*.po. English
is the source language: an English entry without a translation shows its msgid, which is right,
so only fuzzy ones count there. compilemessages skips fuzzy entries, so a fuzzy translation is a
page in English, and an untranslated one as well. Uses GNU gettext's msgattrib and msgfmt (the
gettext package, which compilemessages needs anyway).

    python scripts/check_translations.py [ROOT]   # exit 1 and one line per problem
"""

import subprocess
import sys
from pathlib import Path

SOURCE_LANGUAGE = "en"
SKIP = {".venv", "var", "node_modules", "staticfiles"}


def catalogues(root: Path) -> list[Path]:
    found = [*root.glob("locale/*/LC_MESSAGES/*.po"), *root.glob("*/locale/*/LC_MESSAGES/*.po")]
    return sorted(p for p in found if not SKIP.intersection(p.relative_to(root).parts))


def _unquote(text: str) -> str:
    return text.strip()[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def entries(po_text: str) -> list[tuple[str, str]]:
    """(first source location or "", msgid) of each entry of a PO file, the header left out."""
    found = []
    for block in po_text.split("\n\n"):
        location, msgid, in_msgid = "", None, False
        for line in block.splitlines():
            if line.startswith("#:") and not location:
                location = line[2:].split()[0] if line[2:].split() else ""
            elif line.startswith("msgid "):
                msgid, in_msgid = _unquote(line[len("msgid ") :]), True
            elif in_msgid and line.startswith('"'):
                msgid = (msgid or "") + _unquote(line)
            else:
                in_msgid = False
        if msgid:  # None: no entry; "": the header
            found.append((location, msgid))
    return found


def _msgattrib(po: Path, option: str) -> str:
    result = subprocess.run(  # noqa: S603 (fixed program, our own files)
        ["msgattrib", option, "--no-obsolete", str(po)],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def problems(po: Path) -> list[str]:
    language = po.parent.parent.name
    found = []
    selections = [("--only-fuzzy", "fuzzy")]
    if language != SOURCE_LANGUAGE:
        selections.append(("--untranslated", "untranslated"))
    for option, what in selections:
        for location, msgid in entries(_msgattrib(po, option)):
            where = f" ({location})" if location else ""
            found.append(f"{po}: {what}{where}: {msgid[:80]!r}")
    check = subprocess.run(  # noqa: S603
        ["msgfmt", "--check-format", "-o", "/dev/null", str(po)],  # noqa: S607
        capture_output=True,
        text=True,
    )
    if check.returncode:
        found.extend(f"{po}: {line}" for line in check.stderr.splitlines() if line.strip())
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path()
    pos = catalogues(root)
    found = [problem for po in pos for problem in problems(po)]
    for problem in found:
        print(problem, file=sys.stderr)
    if found:
        print(f"{len(found)} translation problem(s) in {len(pos)} catalogue(s)", file=sys.stderr)
        return 1
    print(f"{len(pos)} catalogue(s): every entry translated, none fuzzy")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
