"""Issue metadata: what was issued, to whom, and the base value of every editable field.

The metadata travels inside the workbook on a very hidden sheet, so a return can be merged three-way with
no other file. It is two compressed, base64-encoded blobs in cells of at most 32,000 characters: a JSON
header (plan, issue, recipient, scope, the fixed fields and a fingerprint of each issued row) and the base
values, one JSON line per action in scope order. A SHA-256 checksum covers both blobs always, and an
HMAC-SHA256 signature when the owner has a key.

The base values are decoded lazily (inflated on first use, then parsed line by line): a reader compares
each returned row's fingerprint first and needs the base only of the rows that differ, which keeps reading
a large return close to the cost of parsing it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any, Literal

from . import normalise, signing
from .errors import MetadataError
from .layout import EDITABLE_FIELDS, FORMAT_VERSION, META_SHEET
from .model import Action, Plan

CHUNK = 32_000
MAGIC = "daplan issue metadata: do not edit this sheet"
# Cell positions (0-based row, col) on the metadata sheet: label in A, value in B.
_ROWS = {"magic": 0, "format": 1, "checksum": 2, "signature": 3, "chunks": 4}
FIRST_CHUNK_ROW = 6
# The fields a row fingerprint covers, in order: the identity and fixed text, then every editable field.
FINGERPRINT_FIELDS: tuple[str, ...] = ("id", "ref", "action", *EDITABLE_FIELDS)

Verdict = Literal["intact", "unsigned", "tampered", "missing"]


@dataclass
class IssueMeta:
    plan_id: str
    plan_revision: int
    issue_id: str
    recipient: str
    issued_at: str
    scope: list[str]
    # action id -> [ref, short hash of the action text]: locked fields are checked against these
    locked: dict[str, list[str]]
    # action id -> fingerprint of the row's cells as written (see `fingerprint`)
    rows: dict[str, str]
    # area id -> sheet name as issued
    sheets: dict[str, str]
    fields: list[str] = field(default_factory=lambda: list(EDITABLE_FIELDS))
    format: int = FORMAT_VERSION
    _base_lines: list[bytes] = field(default_factory=list, repr=False, compare=False)
    _position: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    # The base values as read, compressed: inflated into _base_lines on first use (see `load_base`).
    _base_blob: bytes = field(default=b"", repr=False, compare=False)

    def load_base(self) -> None:
        """Inflate the base values read from a workbook, once. Raises MetadataError when they are damaged.

        Deferred because a return whose rows all match their fingerprints needs none of them; the checksum
        and signature, checked on reading, cover the compressed bytes.
        """
        if self._base_blob:
            blob, self._base_blob = self._base_blob, b""
            try:
                self._base_lines = zlib.decompress(blob).split(b"\n")
            except zlib.error as exc:
                raise MetadataError(f"the issue metadata's base values are damaged ({exc})") from exc

    def base_of(self, action_id: str) -> dict[str, str]:
        """The base values of one issued action (decoded on first use)."""
        self.load_base()
        if not self._position:
            self._position = {a: i for i, a in enumerate(self.scope)}
        i = self._position.get(action_id)
        if i is None or i >= len(self._base_lines):
            return {}
        values = json.loads(self._base_lines[i])
        return dict(zip(self.fields, values, strict=False))

    def header(self) -> dict[str, Any]:
        # Shallow: json.dumps walks the nested dicts and lists itself; asdict's deep copy of 20,000
        # actions' entries cost more than the whole rest of the metadata.
        return {f.name: getattr(self, f.name) for f in dataclass_fields(self) if not f.name.startswith("_")}


@dataclass
class MetaReading:
    """The metadata of a workbook with the verdict on its integrity."""

    verdict: Verdict
    meta: IssueMeta | None
    signed: bool = False
    signature_checked: bool = False
    problem: str = ""


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprint(values: Sequence[str]) -> str:
    """A short hash of a row's cell values as text; equal fingerprints mean an untouched row."""
    return fingerprint_joined("\x1f".join(values))


def fingerprint_joined(joined: str) -> str:
    return hashlib.blake2b(joined.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def field_value(action: Action, key: str) -> str:
    """A field of an action as the text written to (and read back from) its cell."""
    if key == "lead":
        return action.leads[0] if action.leads else ""
    if key == "due":
        return action.due.isoformat() if action.due else ""
    value = getattr(action, key)
    return "" if value is None else str(value)


# The fingerprint's fields before the editable ones, whose values build_meta already has from the base line.
_FIXED_FIELDS = FINGERPRINT_FIELDS[: len(FINGERPRINT_FIELDS) - len(EDITABLE_FIELDS)]
assert FINGERPRINT_FIELDS[len(_FIXED_FIELDS) :] == EDITABLE_FIELDS
# How json.dumps(..., ensure_ascii=False) writes a string; a base line is a list of strings in that form.
_json_string = json.encoder.encode_basestring
# Speed over size: the blobs are mostly the base values' free text; on a 20,000-action plan level 6 took
# 0.25 s longer than level 1 for a file 7% smaller. decode reads any level.
ZLIB_LEVEL = 1


def build_meta(
    plan: Plan, scope: Sequence[str], recipient: str, issue_id: str, issued_at: dt.datetime
) -> IssueMeta:
    index = plan.action_index()
    norm = normalise.text
    lines: list[bytes] = []
    locked: dict[str, list[str]] = {}
    rows: dict[str, str] = {}
    for i in scope:
        action = index[i]
        base = [field_value(action, f) for f in EDITABLE_FIELDS]
        # As json.dumps(base, ensure_ascii=False) writes it, without its per-call set-up 20,000 times over.
        lines.append(("[" + ", ".join(map(_json_string, base)) + "]").encode())
        fixed = [field_value(action, f) for f in _FIXED_FIELDS]
        rows[i] = fingerprint_joined("\x1f".join(fixed + base))
        locked[i] = [norm(action.ref), text_hash(norm(action.action))]
    return IssueMeta(
        plan_id=plan.id,
        plan_revision=plan.revision,
        issue_id=issue_id,
        recipient=recipient,
        issued_at=issued_at.isoformat(),
        scope=list(scope),
        locked=locked,
        rows=rows,
        sheets={a.id: a.sheet for a in plan.areas},
        _base_lines=lines,
    )


def _blobs(meta: IssueMeta) -> tuple[bytes, bytes]:
    header = json.dumps(meta.header(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return zlib.compress(header, ZLIB_LEVEL), zlib.compress(b"\n".join(meta._base_lines), ZLIB_LEVEL)


def _signed_bytes(header: bytes, base: bytes) -> bytes:
    # Both compressed blobs, length-prefixed so no byte can move from one to the other unnoticed.
    return len(header).to_bytes(8, "big") + header + base


def encode(meta: IssueMeta, key: bytes | None) -> list[tuple[int, int, str]]:
    """The cells of the metadata sheet as (row, col, text)."""
    header, base = _blobs(meta)
    payload = _signed_bytes(header, base)
    chunks = []
    for blob in (header, base):
        text = base64.b64encode(blob).decode("ascii")
        chunks.append([text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""])
    cells = [
        (_ROWS["magic"], 0, MAGIC),
        (_ROWS["format"], 0, "format"),
        (_ROWS["format"], 1, str(FORMAT_VERSION)),
        (_ROWS["checksum"], 0, "sha256"),
        (_ROWS["checksum"], 1, signing.checksum(payload)),
        (_ROWS["signature"], 0, "hmac-sha256"),
        (_ROWS["signature"], 1, signing.sign(key, payload) if key else ""),
        (_ROWS["chunks"], 0, "chunks"),
        (_ROWS["chunks"], 1, f"{len(chunks[0])} {len(chunks[1])}"),
    ]
    row = FIRST_CHUNK_ROW
    for part in chunks:
        for chunk in part:
            cells.append((row, 0, chunk))
            row += 1
    return cells


def _cell(rows: Sequence[Sequence[Any]], row: int, col: int) -> str:
    if row < len(rows) and col < len(rows[row]):
        value = rows[row][col]
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value).strip()
    return ""


def decode(rows: Sequence[Sequence[Any]], key: bytes | None) -> MetaReading:
    """Read the metadata sheet's rows back and judge them: intact, unsigned or tampered."""

    def tampered(problem: str) -> MetaReading:
        return MetaReading("tampered", None, problem=problem)

    if _cell(rows, _ROWS["magic"], 0) != MAGIC:
        return tampered(f"the {META_SHEET} sheet has been changed (its first cell is not the daplan marker)")
    try:
        n_header, n_base = (int(x) for x in _cell(rows, _ROWS["chunks"], 1).split())
    except ValueError:
        return tampered("the chunk counts on the metadata sheet are damaged")
    first = FIRST_CHUNK_ROW
    try:
        header = base64.b64decode("".join(_cell(rows, first + i, 0) for i in range(n_header)), validate=True)
        base = base64.b64decode(
            "".join(_cell(rows, first + n_header + i, 0) for i in range(n_base)), validate=True
        )
    except (binascii.Error, ValueError):
        return tampered("the metadata cannot be decoded")
    payload = _signed_bytes(header, base)
    if signing.checksum(payload) != _cell(rows, _ROWS["checksum"], 1):
        return tampered("the metadata checksum does not match: the metadata sheet was edited")
    try:
        data = json.loads(zlib.decompress(header))
        meta = IssueMeta(**data)
        if meta.scope and not base:
            raise ValueError("no base values")
        meta._base_blob = base if meta.scope else b""
    except (ValueError, TypeError, zlib.error) as exc:
        return tampered(f"the metadata is not in the expected form ({exc})")
    if meta.format > FORMAT_VERSION:
        return tampered(
            f"metadata format {meta.format} is newer than this daplan understands; upgrade daplan"
        )
    signature = _cell(rows, _ROWS["signature"], 1)
    if not signature:
        return MetaReading("unsigned", meta)
    if key is None:
        return MetaReading("intact", meta, signed=True, signature_checked=False)
    if signing.signature_ok(key, payload, signature):
        return MetaReading("intact", meta, signed=True, signature_checked=True)
    return MetaReading(
        "tampered",
        meta,
        signed=True,
        signature_checked=True,
        problem="the signature does not match the owner's key: the metadata was altered or signed with another key",
    )


def read_workbook_meta(path: str | os.PathLike[str], key: bytes | None = None) -> MetaReading:
    """The issue metadata of a workbook file and its verdict ("missing" when the sheet is gone)."""
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    try:
        # LibreOffice turns a very hidden sheet into a hidden one, so the sheet is found by name only.
        if META_SHEET not in wb.sheetnames:
            return MetaReading("missing", None, problem=f"the workbook has no {META_SHEET} sheet")
        ws = wb[META_SHEET]
        ws.reset_dimensions()
        rows = [list(r) for r in ws.iter_rows(max_col=2, max_row=FIRST_CHUNK_ROW + 100_000, values_only=True)]
    finally:
        wb.close()
    return decode(rows, key)
