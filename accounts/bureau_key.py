"""The bureau's Ed25519 signing key, as a PEM file (PKCS#8), created with mode 0600 on first use.

accounts signs the audit trail's daily chain heads with it (AUDIT_SIGNING_KEY_FILE, by default the
file that also signs evidence bundles, EVIDENCE_SIGNING_KEY_FILE: one bureau key, one public half
to publish). It lives here, in the lowest app, so that accounts never imports cases.
"""

import base64
import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def key_load(path: Path, *, create: bool = True) -> Ed25519PrivateKey:
    """The private key in `path`; with `create`, a new one is written first when the file is
    missing (several processes at once: the first link into place wins, the others read it)."""
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".bureau-key-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process linked its key first
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def public_base64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
