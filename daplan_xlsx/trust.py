"""Trust by default: every return is checked against what was really issued, signed or not.

`distribute` (and the conflicts workbook) record every issued workbook in the plan's journal as an `issue`
line: its issue id, recipient, scope, kind, whether it was signed and the checksum of its metadata as written.
A return's metadata is then judged against that register: an unknown issue id, another recipient, a widened
scope, another kind, or metadata that differs in any byte from what was issued (a base value set to the
plan's current value, say, so that a conflict would overwrite) is refused, signed or not. A workbook issued
signed must come back signed with the owner's key. The master workbook is for reading and is never a return.

The owner's signing key is made on first use and kept outside the plan's folder, in the user's configuration
folder (`daplan/keys/PLAN-ID.key`, readable by its owner only), so every workbook is signed without the owner
doing anything; `--no-sign` opts out and `--key-file` names another key.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import KeyFileError
from .meta import MetaReading
from .signing import load_key, write_key

CONFIG_ENV = "DAPLAN_CONFIG_DIR"


def config_dir() -> Path:
    """The user's daplan configuration folder: $DAPLAN_CONFIG_DIR, %APPDATA%\\daplan, or ~/.config/daplan."""
    given = os.environ.get(CONFIG_ENV)
    if given:
        return Path(given)
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "daplan"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "daplan"


def key_path(plan_id: str) -> Path:
    return config_dir() / "keys" / f"{plan_id}.key"


def owner_key(plan_id: str, *, create: bool) -> bytes | None:
    """The owner's key for this plan, made (readable by its owner only) when `create` and there is none."""
    path = key_path(plan_id)
    if path.is_file():
        return load_key(path)
    if not create:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return write_key(path)
    except OSError as exc:
        raise KeyFileError(
            f"cannot create the plan's signing key: {exc.strerror or exc}",
            file=path,
            hint=f"set {CONFIG_ENV} to a folder you can write to, or pass --no-sign",
        ) from exc


def choose_key(
    plan_id: str, key_file: Path | None, *, sign: bool = True, create: bool = True
) -> bytes | None:
    """The key a command uses: the file given, else (unless not signing) the owner's key for this plan."""
    if key_file is not None:
        return load_key(key_file)
    if not sign:
        return None
    return owner_key(plan_id, create=create)


def register_of(entries: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Issue id -> its `issue` journal line: every workbook issued from this record."""
    return {e["issue_id"]: e for e in entries if e["event"] == "issue"}


def issue_line(info: Any, *, file: str, plan_revision: int) -> dict[str, Any]:
    """The journal's record of one issued workbook (`info` is the writer's IssueInfo): its kind, whether it
    was signed and its checksum are those of the metadata as written."""
    return {
        "event": "issue",
        "time": info.issued_at.isoformat(),
        "revision": plan_revision,
        "issue_id": info.issue_id,
        "recipient": info.recipient,
        "scope": list(info.scope),
        "kind": info.meta.kind,
        "signed": info.meta._signed,
        "checksum": info.meta._checksum,
        "file": file,
    }


def _refused(reading: MetaReading, problem: str) -> MetaReading:
    return MetaReading(
        "tampered", None, signed=reading.signed, signature_checked=reading.signature_checked, problem=problem
    )


def judge(
    reading: MetaReading,
    register: Mapping[str, dict[str, Any]] | None,
    key: bytes | None,
    plan_id: str | None = None,
    *,
    owner: bool = False,
) -> MetaReading:
    """The reading as trust sees it: refused ("tampered", with the reason) unless it is what was issued.

    A workbook of another plan (`plan_id` differs) is left to the reader, which says so in its own words.
    `owner`: the caller applies the owner's workbook (`daplan apply`), which is the only thing it takes; a
    lead's return never takes the owner's workbook.
    """
    meta = reading.meta
    if meta is None or reading.verdict not in ("intact", "unsigned"):
        return reading
    if plan_id is not None and meta.plan_id != plan_id:
        return reading
    if owner and meta.kind != "owner":
        return _refused(
            reading,
            f"this is a {meta.kind} workbook, not the owner's workbook made by `daplan edit`: merge a lead's "
            "return (or the conflicts workbook) with `daplan merge`",
        )
    if not owner and meta.kind == "owner":
        return _refused(
            reading,
            "this is the plan owner's workbook made by `daplan edit`, not a lead's return: apply it with "
            "`daplan apply PLAN FILE`",
        )
    if meta.kind == "master":
        return _refused(
            reading, "this is the plan's master workbook, made for reading: it is never merged as a return"
        )
    if not register:
        return reading  # nothing recorded (a plan distributed before issues were recorded): checks as before
    entry = register.get(meta.issue_id)
    if entry is None:
        return _refused(
            reading,
            f"its issue id {meta.issue_id[:40]!r} is not one this plan issued (forged, or issued from another copy "
            "of the plan)",
        )
    if entry["recipient"] != meta.recipient:
        return _refused(
            reading, f"it was issued to {entry['recipient']!r}, but its metadata now names {meta.recipient!r}"
        )
    if list(entry["scope"]) != list(meta.scope):
        added = sorted(set(meta.scope) - set(entry["scope"]))
        detail = f" ({len(added)} action(s) added, e.g. {added[0]})" if added else ""
        return _refused(reading, f"its scope is not the one issued{detail}")
    if str(entry.get("kind") or "lead") != meta.kind:
        return _refused(
            reading, f"it was issued as a {entry.get('kind') or 'lead'} workbook, not a {meta.kind} one"
        )
    if entry.get("checksum") and entry["checksum"] != reading.checksum:
        return _refused(
            reading,
            "its metadata differs from what was issued (base values or fixed fields changed, checksum recomputed)",
        )
    if entry.get("signed"):
        if not reading.signed:
            return _refused(
                reading, "it was issued signed, but it carries no signature (the signature was removed)"
            )
        if key is None or not reading.signature_checked:
            return _refused(
                reading,
                "it was issued signed, but the owner's signing key is not on this machine, so the signature cannot "
                "be checked (copy the key here: see README, 'The signing key')",
            )
    return reading
