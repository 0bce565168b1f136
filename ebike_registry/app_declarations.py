"""Declarations each app keeps in a module of its own (`<app>/db_privileges.py`, `<app>/retention.py`):
found through the app registry, so the code that applies them imports no app to its right."""

from collections.abc import Iterable, Iterator
from importlib import import_module
from types import ModuleType
from typing import Any

from django.apps import apps as global_apps


def app_declarations(submodule: str, app_configs: Iterable[Any] | None = None) -> Iterator[tuple[str, ModuleType]]:
    """(module name, module) of `<app>.<submodule>` for every installed app that has one."""
    for app_config in app_configs if app_configs is not None else global_apps.get_app_configs():
        module_name = f"{app_config.name}.{submodule}"
        try:
            module = import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:  # the module exists but something it imports does not
                raise
            continue
        yield module_name, module
