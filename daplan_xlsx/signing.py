"""The plan owner's signing key: HMAC-SHA256 over issue metadata. The key never goes into a workbook."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from .errors import KeyFileError, OutputExists

_PREFIX = "daplan-key-v1:"


def write_key(path: Path) -> bytes:
    """Create a new random key file readable by its owner only; never overwrite one."""
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise OutputExists(
            "a key file already exists here",
            file=path,
            hint="keep it, or delete it first if you mean to replace it",
        ) from exc
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(_PREFIX + key.hex() + "\n")
    return key


def load_key(path: Path) -> bytes:
    if not path.is_file():
        raise KeyFileError("key file not found", file=path)
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if not text.startswith(_PREFIX):
        raise KeyFileError("not a daplan key file", file=path)
    try:
        key = bytes.fromhex(text[len(_PREFIX) :])
    except ValueError as exc:
        raise KeyFileError("the key file is damaged", file=path) from exc
    if len(key) < 16:
        raise KeyFileError("the key is too short", file=path)
    return key


def sign(key: bytes, payload: bytes) -> str:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def signature_ok(key: bytes, payload: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(key, payload), signature)


def checksum(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()
