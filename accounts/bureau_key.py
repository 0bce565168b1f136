"""The bureau's Ed25519 signing key, as a PEM file (PKCS#8), created with mode 0600 on first use.

accounts signs the audit trail's daily chain heads with it (AUDIT_SIGNING_KEY_FILE, by default the
file that also signs evidence bundles, EVIDENCE_SIGNING_KEY_FILE: one bureau key, one public half
to publish). It lives here, in the lowest app, so that accounts never imports cases.
"""

import base64
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ebike_registry.keys import secret_file_create


def key_load(path: Path, *, create: bool = True) -> Ed25519PrivateKey:
    """The private key in `path`; with `create`, a new one is written first when the file is
    missing (several processes at once: the first link into place wins, the others read it)."""
    if create:
        key_create(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def key_create(path: Path) -> bool:
    """Write a new key to `path` unless one is there; True when this call wrote it."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return secret_file_create(path, pem)


def public_base64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, as printed on evidence PDFs and published."""
    digest = hashlib.sha256(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()
    return "SHA256:" + ":".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def public_key_load(data: bytes) -> Ed25519PublicKey:
    """A PEM public key, a PEM private key (its public half) or 32 raw bytes in base64."""
    text = data.strip()
    if text.startswith(b"-----BEGIN PUBLIC KEY"):
        key = serialization.load_pem_public_key(text)
    elif text.startswith(b"-----BEGIN PRIVATE KEY"):
        key = serialization.load_pem_private_key(text, password=None).public_key()
    else:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 key")
    return key
