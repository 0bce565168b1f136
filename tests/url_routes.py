"""Every route of the URL configuration, for the tests that walk all of them (the role matrix, CSP)."""

from collections.abc import Iterator

from django.urls import URLPattern, URLResolver, get_resolver


def url_routes(
    patterns: list | None = None, prefix: str = "", namespace: str | None = None
) -> Iterator[tuple[str | None, str]]:
    """(the route's name with its namespaces, or None when it has none; its pattern from the root)."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace
            joined = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
            yield from url_routes(entry.url_patterns, prefix + str(entry.pattern), joined)
        elif isinstance(entry, URLPattern):
            name = (f"{namespace}:{entry.name}" if namespace else entry.name) if entry.name else None
            yield name, prefix + str(entry.pattern)
