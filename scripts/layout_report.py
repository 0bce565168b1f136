#!/usr/bin/env python3
"""Figures of the code's layout, as JSON: files and lines per app, the longest functions, the
`# type: ignore` count and the modules that name another app's table in SQL.

    python3 scripts/layout_report.py [ROOT]

ROOT defaults to this checkout; point it at another (a `git worktree` of an older commit) to compare.
Tests, benchmarks and migrations are left out: the figures speak of the application's own code.
"""

import ast
import json
import re
import sys
from pathlib import Path

APPS = ("ebike_registry", "accounts", "vehicles", "tracking", "cases", "stats", "web", "demo")
SKIPPED_PARTS = {"migrations", "tests", "bench", ".venv", "node_modules"}
TABLE_RE = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+(?:ONLY\s+)?\"?([a-z]+)_[a-z_]+", re.IGNORECASE)


def app_modules(root: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for app in APPS:
        base = root / app
        if base.is_dir():
            found[app] = sorted(p for p in base.rglob("*.py") if not SKIPPED_PARTS & set(p.relative_to(root).parts))
    return found


def longest_functions(root: Path, modules: dict[str, list[Path]], top: int = 10) -> list[dict[str, object]]:
    sized = []
    for paths in modules.values():
        for path in paths:
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    sized.append({"function": f"{path.relative_to(root)}:{node.name}", "lines": lines})
    return sorted(sized, key=lambda row: -int(row["lines"]))[:top]


def foreign_sql_modules(root: Path, modules: dict[str, list[Path]]) -> list[str]:
    """Modules with a SQL string naming a table of another app (a table is named `<app>_<model>`).
    Demo data is exempt, as in tests/test_layers.py: it fills every app's tables."""
    apps = {app for app in APPS if app != "ebike_registry"}
    hits = []
    for app, paths in modules.items():
        if app == "demo":
            continue
        for path in paths:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            strings = (n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str))
            owners = {m.group(1).lower() for s in strings for m in TABLE_RE.finditer(s)}
            if owners & (apps - {app}):
                hits.append(str(path.relative_to(root)))
    return hits


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent).resolve()
    modules = app_modules(root)
    per_app = {
        app: {"files": len(paths), "lines": sum(len(p.read_text(encoding="utf-8").splitlines()) for p in paths)}
        for app, paths in modules.items()
    }
    ignores = sum(p.read_text(encoding="utf-8").count("# type: ignore") for paths in modules.values() for p in paths)
    foreign = foreign_sql_modules(root, modules)
    report = {
        "per_app": per_app,
        "longest_functions": longest_functions(root, modules),
        "type_ignores": ignores,
        "foreign_sql_modules": len(foreign),
        "foreign_sql_module_paths": foreign,
    }
    print(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
