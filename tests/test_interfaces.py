"""The interfaces other systems and people rely on, pinned, so a restructuring proves it kept them.

Each test compares what the running project exposes with a snapshot in tests/snapshots/: the OpenAPI
schema, every URL name with its namespace and route, the Celery task names (queued messages and the
beat schedule name them), the beat schedule, the management commands, the settings names, the keys
each benchmark prints and the order of the ingestion handlers. A difference fails with the changed
entries. When an interface is meant to change, regenerate the snapshots deliberately:

    UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/test_interfaces.py

and say why in the commit.
"""

import ast
import json
import os
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import get_commands
from django.urls import URLPattern, URLResolver, get_resolver

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
OWN_APPS = ("accounts", "vehicles", "tracking", "cases", "stats", "web", "demo", "ebike_registry")


def _matches_snapshot(name: str, current: Any) -> None:
    path = SNAPSHOTS / f"{name}.json"
    text = json.dumps(current, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    stored = json.loads(path.read_text(encoding="utf-8"))
    if stored != json.loads(text):
        problems = _differences(stored, json.loads(text), name)
        pytest.fail(f"{name} differs from tests/snapshots/{name}.json:\n" + "\n".join(problems[:40]))


def _differences(old: Any, new: Any, where: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = [f"{where}.{key}: removed" for key in sorted(old.keys() - new.keys())]
        found += [f"{where}.{key}: added" for key in sorted(new.keys() - old.keys())]
        for key in sorted(old.keys() & new.keys()):
            found += _differences(old[key], new[key], f"{where}.{key}")
        return found
    return [] if old == new else [f"{where}: {old!r} became {new!r}"]


def _url_names(patterns: list, namespace: str = "", prefix: str = "") -> dict[str, str]:
    names: dict[str, str] = {}
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            if entry.namespace == "admin":
                continue  # Django's admin site: its names are Django's, not ours
            names.update(_url_names(entry.url_patterns, inner, route))
        elif isinstance(entry, URLPattern) and entry.name:
            names[namespace + entry.name] = route
    return names


def test_url_names_namespaces_and_routes_are_kept():
    _matches_snapshot("urls", _url_names(get_resolver().url_patterns))


def test_the_openapi_schema_is_kept(clerk_api):
    response = clerk_api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    _matches_snapshot("openapi", response.json())


def test_celery_task_names_and_the_beat_schedule_are_kept():
    from ebike_registry.celery import app

    app.loader.import_default_modules()
    tasks = sorted(name for name in app.tasks if not name.startswith("celery."))
    schedule = {entry: spec["task"] for entry, spec in settings.CELERY_BEAT_SCHEDULE.items()}
    _matches_snapshot("celery", {"tasks": tasks, "beat_schedule": schedule})


def test_management_commands_are_kept():
    ours = sorted(name for name, app in get_commands().items() if app.split(".")[0] in OWN_APPS)
    _matches_snapshot("commands", ours)


def test_settings_names_are_kept():
    names = sorted(name for name in dir(settings._wrapped) if name.isupper())
    _matches_snapshot("settings", names)


def test_the_ingest_handlers_run_in_the_same_order():
    from tracking.derived import handlers

    _matches_snapshot("ingest_handlers", [handler.__name__ for _path, handler in handlers()])


def _bench_keys(source: str) -> list[str]:
    """The string keys a benchmark script puts in dicts or assigns by subscript: its JSON's keys."""
    keys: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict):
            keys.update(k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
        elif isinstance(node, ast.Assign | ast.AugAssign):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                key = target.slice if isinstance(target, ast.Subscript) else None
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    keys.add(key.value)
    return sorted(keys)


def test_benchmark_json_keys_are_kept():
    scripts = sorted(p for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_"))
    assert scripts, "no benchmark scripts found"
    _matches_snapshot("bench_keys", {p.stem: _bench_keys(p.read_text(encoding="utf-8")) for p in scripts})
