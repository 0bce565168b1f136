"""The bytes that hashes and signatures are taken over (evidence bundles, the audit chain)."""

import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """UTF-8 JSON, keys sorted, separators ',' and ':' without whitespace; NaN and infinities refused."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
