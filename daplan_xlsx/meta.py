"""Issue metadata: what was issued, to whom, and the base value of every editable field.

The metadata travels inside the workbook on a very hidden sheet, so a return can be merged three-way with
no other file. It is two compressed, base64-encoded blobs in cells of at most 32,000 characters: a JSON
header (plan, issue, recipient, scope, the fixed fields and a fingerprint of each issued row) and the base
values, one JSON line per action in scope order. A SHA-256 checksum covers both blobs always, and an
HMAC-SHA256 signature when the owner has a key.

A return is untrusted: its metadata may be forged, with a checksum recomputed to match. So the checksum and
signature are checked on the compressed bytes as stored, before anything is inflated; chunk counts are
bounded by the rows the sheet really has; and nothing is inflated past a size that the workbook's scope
could legitimately need (`MetaLimits`), with a streaming decompressor that stops at the cap. A header
that does not have the expected shape and types, or whose texts hold characters a workbook cannot hold, is
tampered.

The base values are decoded lazily (inflated on first use, then parsed line by line): a reader compares
each returned row's fingerprint first and needs the base only of the rows that differ, which keeps reading
a large return close to the cost of parsing it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import itertools
import json
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any, Literal

from . import normalise, signing
from .errors import MetadataError, ReturnUnreadable
from .layout import EDITABLE_FIELDS, FORMAT_VERSION, META_SHEET, column_letter
from .model import EXCEL_CELL_LIMIT, Action, Plan, text_problem

CHUNK = 32_000
MAGIC = "daplan issue metadata: do not edit this sheet"
# Cell positions (0-based row, col) on the metadata sheet: label in A, value in B.
_ROWS = {"magic": 0, "format": 1, "checksum": 2, "signature": 3, "chunks": 4}
FIRST_CHUNK_ROW = 6
# The fields a row fingerprint covers, in order: the identity and fixed text, then every editable field.
FINGERPRINT_FIELDS: tuple[str, ...] = ("id", "ref", "action", *EDITABLE_FIELDS)

Verdict = Literal["intact", "unsigned", "tampered", "missing"]
# The kinds of workbook daplan issues (see IssueMeta.kind). "owner" is the plan owner's workbook of the whole
# plan (`daplan edit`), applied with `daplan apply` and never merged as a lead's return.
KINDS = ("lead", "conflicts", "master", "owner")

# Size caps for inflating the metadata. The header holds, per action issued, its id three times (at most 64
# characters each), two short hashes and its Ref; the base values hold, per action, six fields of at most
# 32,767 characters (four bytes each in UTF-8). Whatever the scope, nothing is inflated past MAX_INFLATED.
HEADER_FIXED = 256 * 1024
HEADER_PER_ACTION = 512
BASE_FIXED = 64 * 1024
BASE_PER_ACTION = len(EDITABLE_FIELDS) * (EXCEL_CELL_LIMIT * 4 + 8)
MAX_INFLATED = 256 * 1024 * 1024
# The owner's workbook also carries the whole plan as issued (its base) after the base values: at most what a
# plan file may be (32 MiB), which the actions' share above does not cover (statuses, leads, glossary, texts).
OWNER_DOCUMENT_BYTES = 32 * 1024 * 1024
# Actions a workbook may hold when nothing is known of its plan: an area sheet is read up to 100,000 rows.
DEFAULT_MAX_SCOPE = 100_000
# How long a one-line text of the header may be (a recipient is a lead's name, at most 255 characters).
_HEADER_TEXT_LIMIT = 1024


@dataclass(frozen=True)
class MetaLimits:
    """How large a return's metadata may inflate, from the number of actions it can have been issued with.

    `max_scope` bounds the scope before the header (which holds the scope) is inflated: for a plan, its
    number of actions, with room for actions removed from the plan since; `ref_bytes` is the room its refs
    take in the header.
    """

    max_scope: int = DEFAULT_MAX_SCOPE
    ref_bytes: int = 0

    @classmethod
    def for_plan(cls, plan: Plan) -> MetaLimits:
        actions = [a for area in plan.areas for a in area.actions]
        # Refs as JSON may take up to six bytes a character (an escape); twice over, for refs since shortened.
        return cls(2 * len(actions) + 100, 12 * sum(len(a.ref) for a in actions))

    @property
    def header_bytes(self) -> int:
        return min(HEADER_FIXED + self.max_scope * HEADER_PER_ACTION + self.ref_bytes, MAX_INFLATED)

    @staticmethod
    def base_bytes(scope: int) -> int:
        return min(BASE_FIXED + scope * BASE_PER_ACTION, MAX_INFLATED)


def _oversized(what: str, cap: int, cell: str) -> ReturnUnreadable:
    return ReturnUnreadable(
        f"the issue metadata's {what} would inflate past {cap:,} bytes, more than the workbook's actions "
        "can need (a compression bomb?)",
        sheet=META_SHEET,
        cell=cell,
        hint="ask the sender for the workbook as it was issued, or re-issue it",
    )


def _may_fit(blob: bytes, cap: int) -> bool:
    # Deflate never grows data by more than about 0.1%: a longer stream cannot inflate within the cap.
    return len(blob) <= cap + cap // 512 + 1024


def inflate(blob: bytes, cap: int, what: str, cell: str) -> bytes:
    """A zlib stream inflated, never past `cap` bytes: ReturnUnreadable past it, MetadataError when damaged."""
    if not _may_fit(blob, cap):
        raise _oversized(what, cap, cell)
    d = zlib.decompressobj()
    try:
        out = d.decompress(blob, cap + 1)
    except zlib.error as exc:
        raise MetadataError(
            f"the issue metadata's {what} are damaged ({exc})", sheet=META_SHEET, cell=cell
        ) from exc
    if len(out) > cap or d.unconsumed_tail:
        raise _oversized(what, cap, cell)
    if not d.eof or d.unused_data:
        raise MetadataError(
            f"the issue metadata's {what} are damaged (cut short)", sheet=META_SHEET, cell=cell
        )
    return out


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
    # What the workbook is for: a lead's ("lead"), the owner's conflicts workbook ("conflicts"), the master
    # ("master", for reading only). Signed and registered with the rest, so it cannot be changed unnoticed.
    kind: str = "lead"
    # The checksum written with the metadata (set by `encode`): the issue register records it.
    _checksum: str = field(default="", repr=False, compare=False)
    # Whether `encode` signed it.
    _signed: bool = field(default=False, repr=False, compare=False)
    _base_lines: list[bytes] = field(default_factory=list, repr=False, compare=False)
    _position: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    # The base values as read, compressed: inflated into _base_lines on first use (see `load_base`).
    _base_blob: bytes = field(default=b"", repr=False, compare=False)
    # The cell of the base values' first chunk, for messages.
    _base_cell: str = field(default="", repr=False, compare=False)

    def load_base(self) -> None:
        """Inflate the base values read from a workbook, once. Raises MetadataError when they are damaged,
        ReturnUnreadable when they would inflate past what the scope can need.

        Deferred because a return whose rows all match their fingerprints needs none of them; the checksum
        and signature, checked on reading, cover the compressed bytes.
        """
        if self._base_blob:
            blob, self._base_blob = self._base_blob, b""
            cap = self.base_cap()
            self._base_lines = inflate(blob, cap, "base values", self._base_cell).split(b"\n")

    def base_cap(self) -> int:
        """How far the base values may inflate: what the scope can need (and, for the owner's workbook, the
        whole plan it carries)."""
        cap = MetaLimits.base_bytes(len(self.scope))
        if self.kind == "owner":
            cap = min(cap + OWNER_DOCUMENT_BYTES, MAX_INFLATED)
        return cap

    def attach_document(self, data: bytes) -> None:
        """Carry `data` (one line, no newline) after the base values: signed and checksummed with them."""
        if b"\n" in data:
            raise ValueError("a document carried in the metadata is one line")
        self._base_lines.append(data)

    def document(self) -> bytes | None:
        """The line carried after the base values (see `attach_document`), or None when there is none."""
        self.load_base()
        n = len(self.scope)
        return self._base_lines[n] if len(self._base_lines) > n else None

    def base_of(self, action_id: str) -> dict[str, str]:
        """The base values of one issued action (decoded on first use)."""
        self.load_base()
        if not self._position:
            self._position = {a: i for i, a in enumerate(self.scope)}
        i = self._position.get(action_id)
        if i is None or i >= len(self._base_lines):
            return {}
        try:
            values = json.loads(self._base_lines[i])
        except (ValueError, RecursionError) as exc:
            raise MetadataError(
                f"the issue metadata's base values are damaged at action {action_id} ({exc})",
                sheet=META_SHEET,
                cell=self._base_cell,
            ) from exc
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise MetadataError(
                f"the issue metadata's base values are damaged at action {action_id} (not a list of texts)",
                sheet=META_SHEET,
                cell=self._base_cell,
            )
        return dict(zip(self.fields, values, strict=False))

    def header(self) -> dict[str, Any]:
        # Shallow: json.dumps walks the nested dicts and lists itself; asdict's deep copy of 20,000
        # actions' entries cost more than the whole rest of the metadata.
        out = {f.name: getattr(self, f.name) for f in dataclass_fields(self) if not f.name.startswith("_")}
        if out["kind"] == "lead":
            del out["kind"]  # a lead's workbook is written as before kinds existed: older readers take it
        return out


@dataclass
class MetaReading:
    """The metadata of a workbook with the verdict on its integrity."""

    verdict: Verdict
    meta: IssueMeta | None
    signed: bool = False
    signature_checked: bool = False
    problem: str = ""
    checksum: str = ""  # as stored in the workbook


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
    if key == "supporting":  # the leads after the primary, one a line (the owner's workbook edits them)
        return "\n".join(action.leads[1:])
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
    meta._checksum = signing.checksum(payload)
    meta._signed = key is not None
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


def _where(row: int) -> str:
    return f"{column_letter(0)}{row + 1}"


# The header's keys and the type of each (a list or dict gives the type of its items).
_HEADER_TYPES: dict[str, Any] = {
    "plan_id": str,
    "plan_revision": int,
    "issue_id": str,
    "recipient": str,
    "issued_at": str,
    "scope": [str],
    "locked": {str: [str]},
    "rows": {str: str},
    "sheets": {str: str},
    "fields": [str],
    "format": int,
    "kind": str,
}
_HEADER_REQUIRED = (
    "plan_id",
    "plan_revision",
    "issue_id",
    "recipient",
    "issued_at",
    "scope",
    "locked",
    "rows",
    "sheets",
)
# The header's one-line texts: shown in reports and recorded in the journal and the plan (`updated_by`).
_HEADER_TEXTS = ("plan_id", "issue_id", "recipient", "issued_at")


def _shape_problem(data: object, limits: MetaLimits) -> str | None:
    """Why an inflated header is not one daplan wrote (wrong keys or types, texts it cannot hold)."""
    if not isinstance(data, dict):
        return "the header is not a table of fields"
    missing = [k for k in _HEADER_REQUIRED if k not in data]
    if missing:
        return f"the header lacks {', '.join(missing)}"
    unknown = sorted(k for k in data if k not in _HEADER_TYPES)
    if unknown:
        return f"the header has unknown fields ({', '.join(map(str, unknown[:5]))})"
    for name, kind in _HEADER_TYPES.items():
        if name in data and not _has_type(data[name], kind):
            return f"the header's {name} is not of the expected type"
    for name in _HEADER_TEXTS:
        text = data[name]
        if len(text) > _HEADER_TEXT_LIMIT:
            return f"the header's {name} is {len(text):,} characters long"
        # A lead's name may hold a line break (the model allows it); the other texts are single words.
        problem = text_problem(text) or _control_problem(text, allow="\n\t\r" if name == "recipient" else "")
        if problem:
            return f"the header's {name} {problem}"
    if data.get("kind", "lead") not in KINDS:
        return "the header names an unknown kind of workbook"
    if any(len(pair) != 2 for pair in data["locked"].values()):
        return "the header's locked is not of the expected type"
    scope = data["scope"]
    if len(scope) > limits.max_scope:
        return f"the scope lists {len(scope):,} actions; the plan has room for {limits.max_scope:,}"
    if len(set(scope)) != len(scope):
        return "the scope lists an action twice"
    return None


def _control_problem(text: str, allow: str = "") -> str | None:
    # Control characters (C0, DEL, C1) other than those allowed: they could fake a line of a report.
    bad = next((ch for ch in text if (ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F) and ch not in allow), None)
    if bad is None:
        return None
    return f"contains the control character U+{ord(bad):04X}; a workbook daplan issued never does"


def _has_type(value: object, kind: Any) -> bool:
    # The types of a container's items are gathered by `map` (C speed): a header of a 20,000-action scope
    # is checked in a few milliseconds.
    if isinstance(kind, list):
        return type(value) is list and _all_of(value, kind[0])
    if isinstance(kind, dict):
        ((k, v),) = kind.items()
        return type(value) is dict and _all_of(value.keys(), k) and _all_of(value.values(), v)
    if kind is int:
        return type(value) is int
    return type(value) is kind


def _all_of(items: Iterable[Any], kind: Any) -> bool:
    if isinstance(kind, type):
        return set(map(type, items)) <= {kind}
    if isinstance(kind, list) and isinstance(kind[0], type):  # lists of one type of item
        items = list(items)
        return set(map(type, items)) <= {list} and _all_of(itertools.chain.from_iterable(items), kind[0])
    return all(_has_type(item, kind) for item in items)


def decode(rows: Sequence[Sequence[Any]], key: bytes | None, limits: MetaLimits | None = None) -> MetaReading:
    """Read the metadata sheet's rows back and judge them: intact, unsigned or tampered.

    Raises ReturnUnreadable (without a file: the caller knows it) when the metadata would take more than
    `limits` allow, MetadataError when it is damaged in a way that is not a verdict.
    """
    limits = limits or MetaLimits()

    def tampered(problem: str) -> MetaReading:
        return MetaReading("tampered", None, problem=problem)

    if _cell(rows, _ROWS["magic"], 0) != MAGIC:
        return tampered(f"the {META_SHEET} sheet has been changed (its first cell is not the daplan marker)")
    counts = _cell(rows, _ROWS["chunks"], 1)
    try:
        n_header, n_base = (int(x) for x in counts.split())
    except ValueError:
        return tampered("the chunk counts on the metadata sheet are damaged")
    first = FIRST_CHUNK_ROW
    # Counted against the rows the sheet has, before any is joined: a count is only a claim.
    present = max(len(rows) - first, 0)
    if n_header < 1 or n_base < 0 or n_header + n_base > present:
        # Never a slip of the hand: a count past the rows there is only makes a reader loop or allocate.
        raise ReturnUnreadable(
            f"the issue metadata claims {counts[:40]!r} chunks but its sheet has {present:,} chunk rows",
            sheet=META_SHEET,
            cell=f"B{_ROWS['chunks'] + 1}",
            hint="ask the sender for the workbook as it was issued, or re-issue it",
        )
    chunks = [_cell(rows, first + i, 0) for i in range(n_header + n_base)]
    if any(len(c) > CHUNK for c in chunks):
        return tampered("a chunk of the metadata is longer than daplan writes them")
    try:
        header = base64.b64decode("".join(chunks[:n_header]), validate=True)
        base = base64.b64decode("".join(chunks[n_header:]), validate=True)
    except (binascii.Error, ValueError):
        return tampered("the metadata cannot be decoded")
    # The checksum and the signature cover the compressed bytes as stored: both are checked before anything
    # is inflated.
    payload = _signed_bytes(header, base)
    if signing.checksum(payload) != _cell(rows, _ROWS["checksum"], 1):
        return tampered("the metadata checksum does not match: the metadata sheet was edited")
    signature = _cell(rows, _ROWS["signature"], 1)
    if signature and key is not None and not signing.signature_ok(key, payload, signature):
        return MetaReading(
            "tampered",
            None,
            signed=True,
            signature_checked=True,
            problem="the signature does not match the owner's key: the metadata was altered or signed with another key",
        )
    header_cell = _where(first)
    try:
        data = json.loads(inflate(header, limits.header_bytes, "header", header_cell))
    except MetadataError as exc:
        return tampered(exc.what)
    except (ValueError, RecursionError) as exc:  # RecursionError: arrays nested past what json parses
        return tampered(f"the metadata is not in the expected form ({type(exc).__name__})")
    problem = _shape_problem(data, limits)
    if problem:
        return tampered(f"the metadata is not in the expected form: {problem} ({META_SHEET}!{header_cell})")
    meta = IssueMeta(**data)
    if (meta.scope or meta.kind == "owner") and not base:
        return tampered("the metadata is not in the expected form (no base values)")
    if not _may_fit(base, meta.base_cap()):
        raise _oversized("base values", meta.base_cap(), _where(first + n_header))
    meta._base_blob = base if (meta.scope or meta.kind == "owner") else b""
    meta._base_cell = _where(first + n_header)
    if meta.format > FORMAT_VERSION:
        return tampered(
            f"metadata format {meta.format} is newer than this daplan understands; upgrade daplan"
        )
    checksum = _cell(rows, _ROWS["checksum"], 1)
    if not signature:
        return MetaReading("unsigned", meta, checksum=checksum)
    if key is None:
        return MetaReading("intact", meta, signed=True, signature_checked=False, checksum=checksum)
    return MetaReading("intact", meta, signed=True, signature_checked=True, checksum=checksum)


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
