"""The layers of README "Layout > Layers", checked on the source: no import runs back up, and no
module's SQL names another app's tables. No database, no Django: the modules are parsed, not
imported.

The whiteboard itself (the order of the layers and which `ebike_registry` modules are wiring) is
read from README.md, so the picture a newcomer reads is the one the test enforces.
"""

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARKER = "<!-- layers: read by tests/test_layers.py -->"
# Apps that own tables, by their table prefix (Django names a table <app label>_<model>).
TABLE_APPS = ("accounts", "vehicles", "tracking", "cases", "stats")
# Not held to the SQL rule: they set up or measure data (their own rules are in their folders).
SQL_EXEMPT_DIRS = {"tests", "bench", "migrations", "demo", "scripts"}
SQL_NAMING = re.compile(rf"\b(?:FROM|JOIN|INTO|UPDATE)\s+\"?({'|'.join(TABLE_APPS)})_\w+", re.IGNORECASE)


@dataclass(frozen=True)
class Whiteboard:
    layers: list[str]  # top first
    wiring: frozenset[str]  # ebike_registry modules in the "wiring" layer

    def layer_of(self, module: str) -> str | None:
        """The layer a dotted module name belongs to; None outside the layered packages."""
        top, _, rest = module.partition(".")
        if top == "ebike_registry":
            return "wiring" if rest.split(".")[0] in self.wiring or not rest else "base"
        return top if top in self.layers else None

    def rank(self, layer: str) -> int:
        return len(self.layers) - self.layers.index(layer)  # higher is further up


def whiteboard(text: str | None = None) -> Whiteboard:
    """The fenced block after MARKER in README.md: one layer per line, top first; the wiring line
    names its modules as ebike_registry/{a,b,c}."""
    text = README.read_text(encoding="utf-8") if text is None else text
    assert MARKER in text, f"README.md has lost the layers whiteboard ({MARKER})"
    block = text.split(MARKER, 1)[1].split("```", 2)[1]
    layers, wiring = [], frozenset()
    for line in block.splitlines()[1:]:
        if not line.strip():
            continue
        name = line.split()[0]
        layers.append(name)
        if name == "wiring":
            found = re.search(r"ebike_registry/\{([^}]*)\}", line)
            assert found, "the wiring line names its modules as ebike_registry/{a,b,...}"
            wiring = frozenset(part.strip() for part in found.group(1).split(","))
    return Whiteboard(layers, wiring)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(module: str, node: ast.AST, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level == 0:
            return [node.module or ""]
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = package[: len(package) - (node.level - 1)]
        return [".".join([*base, node.module] if node.module else base)]
    return []


def import_violations(board: Whiteboard, module: str, source: str, *, is_package: bool = False) -> list[str]:
    """Imports (anywhere in the module: top level, functions, TYPE_CHECKING blocks) of a module in a
    higher layer than `module`'s own."""
    own = board.layer_of(module)
    if own is None:
        return []
    found = []
    for node in ast.walk(ast.parse(source)):
        for name in _imported(module, node, is_package):
            target = board.layer_of(name)
            if target is not None and board.rank(target) > board.rank(own):
                found.append(f"{module}:{node.lineno} imports {name} ({own} -> {target})")
    return found


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def sql_violations(module: str, source: str) -> list[str]:
    """String literals (f-string parts included; docstrings left out: prose) with FROM, JOIN, INTO
    or UPDATE followed by a table of an app other than the module's own."""
    own = module.partition(".")[0]
    tree = ast.parse(source)
    prose = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            for match in SQL_NAMING.finditer(node.value):
                if match.group(1) != own:
                    table = match.group(0).split()[-1].strip('"')
                    found.append(f"{module}:{node.lineno} {' '.join(match.group(0).split())}  [{table}]")
    return found


def project_modules() -> list[Path]:
    """Every module of the layered packages (ebike_registry and the apps)."""
    board = whiteboard()
    tops = {name for name in board.layers if name not in ("wiring", "base")} | {"ebike_registry"}
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py"))


# --- the project ----------------------------------------------------------------------------------


def test_the_whiteboard_names_every_app_and_package_once():
    board = whiteboard()
    assert len(board.layers) == len(set(board.layers)), board.layers
    assert board.layers[0] == "wiring" and board.layers[-1] == "base"
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench", "scripts"}
    assert packages - {"ebike_registry"} == set(board.layers) - {"wiring", "base"}
    missing = [name for name in board.wiring if not (ROOT / "ebike_registry" / f"{name}.py").exists()]
    assert not missing, f"README's wiring line names modules that do not exist: {missing}"


def test_no_import_runs_back_up():
    board = whiteboard()
    found = []
    for path in project_modules():
        found += import_violations(
            board, module_name(path), path.read_text(encoding="utf-8"), is_package=path.name == "__init__.py"
        )
    assert not found, "Imports from a higher layer (README Layout > Layers):\n" + "\n".join(found)


def test_sql_names_only_its_own_apps_tables():
    found = []
    for path in project_modules():
        if SQL_EXEMPT_DIRS & set(path.relative_to(ROOT).parts):
            continue
        found += sql_violations(module_name(path), path.read_text(encoding="utf-8"))
    assert not found, "SQL on another app's tables (call that app's selectors; README Layout > Layers):\n" + "\n".join(
        found
    )


# --- the checks catch what they are meant to (synthetic sources) ------------------------------------

BOARD = whiteboard(
    f"""{MARKER}
```
wiring    ebike_registry/{{__init__,settings,urls}}
web       pages
cases     reports
tracking  positions
vehicles  bikes
base      the rest of ebike_registry
```
"""
)


@pytest.mark.parametrize(
    "module, source",
    [
        ("vehicles.views", "from web.map_selectors import record_last_position\n"),
        ("vehicles.views", "def detail(request):\n    from cases.tracing import access\n    return access\n"),
        ("tracking.derived", "import cases.models\n"),
        ("tracking.derived", "import typing\nif typing.TYPE_CHECKING:\n    from cases.models import Case\n"),
        ("ebike_registry.api", "from vehicles.services.problems import Problems\n"),
        ("cases.views", "from ebike_registry.urls import urlpatterns\n"),
    ],
)
def test_an_import_from_a_higher_layer_is_found(module, source):
    assert len(import_violations(BOARD, module, source)) == 1


def test_a_relative_import_is_resolved_before_it_is_judged():
    assert import_violations(BOARD, "tracking.gateway.writer", "from ..selectors import x\n") == []
    assert import_violations(BOARD, "tracking.gateway", "from . import db\n", is_package=True) == []


def test_imports_down_or_within_a_layer_and_from_wiring_are_allowed():
    source = "from cases.models import Case\nfrom tracking.selectors import positions\nimport vehicles.models\n"
    assert import_violations(BOARD, "web.map_selectors", source) == []
    assert import_violations(BOARD, "ebike_registry.urls", "from web import urls\n") == []
    assert import_violations(BOARD, "vehicles.services", "from ebike_registry.env import env_int\n") == []
    assert import_violations(BOARD, "cases.tracing.api", "from cases.tracing import access\n") == []


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 FROM tracking_ping WHERE terminal_id = %s",
        "SELECT * FROM cases_theftreport r\nJOIN tracking_terminalinstallation i ON i.vehicle_id = r.vehicle_id",
        "INSERT INTO tracking_alarm (kind) VALUES (%s)",
        "UPDATE tracking_lastposition SET missing_point = NULL",
        'select count(*) from "vehicles_vehicle"',
    ],
)
def test_sql_on_another_apps_table_is_found(sql):
    source = f"QUERY = {sql!r}\n\ndef f(cursor):\n    cursor.execute(f'{{QUERY}} LIMIT 1')\n"
    assert sql_violations("cases.alerts.services", source), sql


def test_sql_in_an_f_string_part_is_found():
    source = 'def f(cursor, op):\n    cursor.execute(f"SELECT 1 FROM tracking_ping WHERE device_time {op} %s")\n'
    assert len(sql_violations("web.map_selectors", source)) == 1


def test_own_tables_and_prose_are_not_sql_on_another_app():
    source = (
        '"""Reads tracking_ping; counted from tracking_alarm by the rollup."""\n'
        'SQL = "SELECT kind FROM cases_dutycall WHERE station_id = %s"\n'
        'LABEL = "tracking_ping partitions"\n'
    )
    assert sql_violations("cases.alerts.duty_room", source) == []
