"""The plan file: YAML in, YAML out, deterministic and atomic.

Saving a loaded plan gives back identical bytes: keys follow the model's field order, multi-line text is a
literal block scalar, dates are ISO. libyaml's C loader and dumper are used when present; they produce the
same text as the pure-Python ones and are many times faster on large plans.

Large plans also keep a cache beside them (`.plan.yaml.cache.json`): the SHA-256 of the plan file's bytes
and the plan as JSON, used by `load_plan` only when the hash matches, and by `dumps_plan_after` to re-dump
only the actions a merge changed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from . import collector
from .errors import PlanFileError, PlanInvalid
from .model import TEXT_ERROR, Plan

# A real plan is well under 1 MB; 20,000 actions with long texts stay under 32 MiB.
MAX_PLAN_BYTES = 32 * 1024 * 1024
# Below this size a plan parses in well under a second: no cache file is kept beside it.
CACHE_MIN_BYTES = 512 * 1024

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):
    # No anchors and aliases: the text depends on the values alone, never on which objects are shared.
    def ignore_aliases(self, data: Any) -> bool:
        return True


class _PythonDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


# libyaml escapes characters beyond the Basic Multilingual Plane and the Unicode line breaks (\U, \N, \L,
# \P) where the pure-Python emitter writes them as they are; such plans are always saved by the latter, so
# the bytes never depend on whether libyaml is installed.
_C_ONLY_ESCAPES = re.compile(r"\\[UNLP]")


_UNICODE_BREAKS = ("\x85", "\u2028", "\u2029")


def _represent_str(dumper: Any, value: str) -> Any:
    # Unicode line breaks would be read back as newlines from any other style: double quotes escape them.
    if any(ch in value for ch in _UNICODE_BREAKS):
        style: str | None = '"'
    else:
        style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _represent_datetime(dumper: Any, value: dt.datetime) -> Any:
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", value.isoformat())


for _dumper in (_Dumper, _PythonDumper):
    _dumper.add_representer(str, _represent_str)
    _dumper.add_representer(dt.datetime, _represent_datetime)


def format_loc(loc: tuple[int | str, ...]) -> str:
    """('areas', 2, 'actions', 4, 'status') -> 'areas[2].actions[4].status'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def validate_hint(source: object) -> str:
    """Where to turn when a plan file is broken: `daplan validate` lists every problem, with its line."""
    name = str(source)
    if not name or name.startswith("<"):
        name = "PLAN"
    elif any(ch.isspace() for ch in name):
        name = f'"{name}"'
    return f"run `daplan validate {name}` to list every problem"


def validation_error(exc: ValidationError, source: object) -> PlanInvalid:
    """The first problem of a pydantic error, as one PlanInvalid naming its place."""
    err = exc.errors(include_url=False)[0]
    where = format_loc(tuple(err["loc"]))
    message = err["msg"]
    if err["type"] == TEXT_ERROR:
        ctx = err.get("ctx") or {}
        where = f"{where}.{ctx['field']}" if where else str(ctx["field"])
        message, hint = str(ctx["problem"]), "correct the value named"
    elif err["type"] == "extra_forbidden":
        message = f"unknown key {str(err['loc'][-1])!r}"
        hint = "remove it or fix its spelling (see `daplan schema`)"
    elif err["type"] == "missing":
        message = "required key is missing"
        hint = "add it (see `daplan schema`)"
    else:
        message = message.removeprefix("Value error, ")
        hint = "correct the value named"
    if not where and ": " in message:
        # Cross-field rules report their own path at the start of the message.
        where, message = message.split(": ", 1)
    extra = f" ({len(exc.errors())} problems in all)" if exc.error_count() > 1 else ""
    hint = f"{hint}, or {validate_hint(source)}"
    return PlanInvalid(message + extra, file=source, where=where or None, hint=hint)


def parse_plan(data: Any, source: object = "<plan>") -> Plan:
    if not isinstance(data, dict):
        raise PlanFileError(
            "the file does not hold a plan (expected a mapping of keys such as title, areas)",
            file=source,
            hint="start from `daplan new` or an example in examples/",
        )
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, source) from exc


def _read_plan_bytes(path: Path) -> bytes:
    """The bytes of a plan file, refusing what cannot be one before reading it."""
    if not path.exists():
        raise PlanFileError("file not found", file=path, hint="check the path")
    if path.is_dir():
        raise PlanFileError("this is a directory, not a plan file", file=path, hint="name a .yaml file")
    if not path.is_file():  # a pipe or a device would never end, or end anywhere
        raise PlanFileError("this is not an ordinary file", file=path, hint="name the plan's .yaml file")
    size = path.stat().st_size
    if size > MAX_PLAN_BYTES:
        raise PlanFileError(
            f"file is {size / 1048576:.0f} MiB; a plan file is at most {MAX_PLAN_BYTES // 1048576} MiB",
            file=path,
            hint="check that this is the plan file",
        )
    return path.read_bytes()


def _decode_plan(raw: bytes, path: Path) -> str:
    if b"\0" in raw:
        raise PlanFileError("this is a binary file, not a YAML plan", file=path, hint="name a .yaml file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanFileError(
            f"not UTF-8 text (bad byte at offset {exc.start})", file=path, hint="save the file as UTF-8"
        ) from exc


def read_plan_text(path: Path) -> str:
    """The text of a plan file, refusing what cannot be one before parsing."""
    return _decode_plan(_read_plan_bytes(path), path)


@collector.paused()  # a large plan is a million objects, built with no cycle among them
def loads_plan(text: str, source: object = "<plan>") -> Plan:
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = exc.problem or exc.context or "YAML syntax error"
        raise PlanFileError(
            f"YAML syntax error: {problem}",
            file=source,
            where=where,
            hint=f"fix the YAML at that line, or {validate_hint(source)}",
        ) from exc
    except yaml.YAMLError as exc:
        raise PlanFileError(f"YAML error: {exc}", file=source, hint=validate_hint(source)) from exc
    except (ValueError, TypeError, AttributeError) as exc:
        # PyYAML's date constructor raises plain exceptions for a date that does not exist (2014-02-30).
        raise PlanFileError(
            f"a value that looks like a date is not a valid date ({exc})",
            file=source,
            where=_bad_timestamp_line(text),
            hint=f"write dates as YYYY-MM-DD with a real day and month, or {validate_hint(source)}",
        ) from exc
    return parse_plan(data, source)


def _bad_timestamp_line(text: str) -> str | None:
    """The line of the first timestamp-tagged scalar PyYAML cannot construct."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return None
    stack = [root] if root is not None else []
    constructor = yaml.SafeLoader("")
    while stack:
        node = stack.pop(0)
        if isinstance(node, yaml.ScalarNode):
            if node.tag == "tag:yaml.org,2002:timestamp":
                try:
                    constructor.construct_yaml_timestamp(node)
                except (ValueError, TypeError, AttributeError):
                    return f"line {node.start_mark.line + 1}"
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack.extend((k, v))
    return None


def load_plan(path: str | os.PathLike[str]) -> Plan:
    """Read and validate a plan file; any problem raises a PlanFileError or PlanInvalid."""
    p = Path(path)
    raw = _read_plan_bytes(p)
    digest = hashlib.sha256(raw).hexdigest()
    if len(raw) < CACHE_MIN_BYTES:
        plan = loads_plan(_decode_plan(raw, p), p)
    else:
        cached = _read_cache(_real(p), digest)
        if cached is not None:
            plan = cached[0]
        else:
            plan = loads_plan(_decode_plan(raw, p), p)
            _write_cache(_real(p), digest, plan, canonical=False)
    remember_digest(plan, digest)
    return plan


# The SHA-256 of the bytes each loaded plan was read from, so a commit can refuse to replace a plan file that
# changed meanwhile. Kept beside the plans (by identity, weakly) rather than on them: a field or private
# attribute would take part in comparing plans.
_digests: dict[int, tuple[weakref.ref[Plan], str]] = {}


def remember_digest(plan: Plan, digest: str) -> None:
    key = id(plan)
    _digests[key] = (weakref.ref(plan, lambda _ref, key=key: _digests.pop(key, None)), digest)  # type: ignore[misc]


def loaded_digest(plan: Plan) -> str | None:
    """The SHA-256 of the file `plan` was loaded from (or last saved to), when known."""
    found = _digests.get(id(plan))
    return found[1] if found is not None and found[0]() is plan else None


def _real(path: Path) -> Path:
    # Beside the file a symbolic link names, where the plan really is.
    return Path(os.path.realpath(path)) if path.is_symlink() else path


# The cache beside a large plan file. PyYAML builds Python objects slowly (8 s for 20,000 actions), pydantic
# validates the same plan from JSON in a fraction of a second. The cache is used only when it names the
# SHA-256 of the plan file's bytes, and it is validated in full like the YAML; anything else about it
# (missing, stale, corrupt, unwritable folder) just means the YAML is read.


class _Cache(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str
    canonical: bool  # the plan file's bytes are exactly `dumps_plan(plan)`
    plan: Plan


_CACHE_HEAD = re.compile(rb'\{"sha256":"([0-9a-f]{64})","canonical":(?:true|false),"plan":')


def cache_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.cache.json")


def _read_cache(path: Path, digest: str) -> tuple[Plan, bool] | None:
    data = _cache_bytes(path, digest)
    return None if data is None else _parse_cache(data, digest)


def _cache_bytes(path: Path, digest: str) -> bytes | None:
    """The cache beside `path`, when it names this digest of the plan file."""
    try:
        data = cache_path(path).read_bytes()
    except OSError:
        return None
    head = _CACHE_HEAD.match(data)
    if head is None or head.group(1).decode("ascii") != digest:
        return None
    return data


def _parse_cache(data: bytes, digest: str) -> tuple[Plan, bool] | None:
    try:
        with collector.paused():
            # Strict: the cache is this module's own JSON, so nothing in it needs coercing.
            cache = _Cache.model_validate_json(data, strict=True)
    except ValueError:  # ValidationError included: a torn or edited cache is not used
        return None
    if cache.sha256 != digest:
        return None
    return cache.plan, cache.canonical


def _cache_body(digest: str, plan: Plan, *, canonical: bool) -> bytes:
    return _Cache.model_construct(sha256=digest, canonical=canonical, plan=plan).model_dump_json().encode()


def _write_cache(path: Path, digest: str, plan: Plan, *, canonical: bool) -> None:
    target = cache_path(path)
    try:
        body = _cache_body(digest, plan, canonical=canonical)
        fd, tmp = tempfile.mkstemp(prefix=f"{target.name}.", suffix=".tmp", dir=target.parent)
    except Exception:  # the cache is optional: a read-only folder or an unencodable value only costs time
        return
    try:
        # No fsync: a cache torn by a crash fails validation and is ignored.
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        os.chmod(tmp, new_file_mode(path))
        os.replace(tmp, target)
    except Exception:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _prune(value: Any, top: bool = False) -> Any:
    """Drop empty optional values below the top level, so hand-written files stay short."""
    if isinstance(value, dict):
        return {
            k: _prune(v)
            for k, v in value.items()
            if top or not (v is None or v == "" or v == [] or (k == "closed" and v is False))
        }
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


_DUMP_OPTIONS: dict[str, Any] = dict(
    sort_keys=False, allow_unicode=True, default_flow_style=False, width=4096, indent=2
)


def _dump(data: Any) -> str:
    text: str = yaml.dump(data, Dumper=_Dumper, **_DUMP_OPTIONS)
    if _Dumper is not _PythonDumper and _C_ONLY_ESCAPES.search(text):
        text = yaml.dump(data, Dumper=_PythonDumper, **_DUMP_OPTIONS)
    return text


def dumps_plan(plan: Plan) -> str:
    return _dump(_prune(plan.model_dump(mode="python"), top=True))


# The keys before `revision` in a saved plan, and the keys that must not change for a partial re-dump.
_HEAD_KEYS = ("id", "title", "force", "published", "classification")
_FIXED_KEYS = ("background", "overarching_capabilities", "statuses", "leads", "glossary")
_AREA_KEYS = ("id", "name", "sheet", "key_criteria", "supporting_areas")
_ACTION_SKELETON = "areas:\n- actions:\n"
# In a saved plan only an action starts a line with `  - id: `: a list item of an area (supporting_areas)
# that began with "id: " would be quoted.
_ACTION_START = "\n  - id: "


def _dump_action(action: Any) -> str:
    """An action's lines as they stand in a saved plan: dumped at the same depth, so wrapped the same."""
    text = _dump({"areas": [{"actions": [_prune(action.model_dump(mode="python"))]}]})
    if not text.startswith(_ACTION_SKELETON):
        raise ValueError("unexpected action dump")
    return text[len(_ACTION_SKELETON) :]


def splice_plan(original: str, before: Plan, after: Plan) -> str | None:
    """`dumps_plan(after)`, given `original == dumps_plan(before)`, re-dumping only the changed actions.

    Only a change of `revision` and of fields of existing actions is handled; None for anything else
    (actions added, removed or moved; areas or other top-level fields changed), or when `original` is not
    laid out as expected.
    """
    if any(getattr(before, k) != getattr(after, k) for k in _HEAD_KEYS + _FIXED_KEYS):
        return None
    if len(before.areas) != len(after.areas):
        return None
    changed: list[tuple[int, Any, Any]] = []  # (position in document order, before, after)
    n = 0
    for area_b, area_a in zip(before.areas, after.areas, strict=True):
        if any(getattr(area_b, k) != getattr(area_a, k) for k in _AREA_KEYS):
            return None
        if len(area_b.actions) != len(area_a.actions):
            return None
        for act_b, act_a in zip(area_b.actions, area_a.actions, strict=True):
            if act_b.id != act_a.id:
                return None
            if act_b is not act_a and act_b != act_a:  # a merge shares the actions it left alone
                changed.append((n, act_b, act_a))
            n += 1
    head_text = _dump(_prune(before.model_dump(mode="python", include=set(_HEAD_KEYS)), top=True))
    old_rev, new_rev = (_dump({"revision": p.revision}) for p in (before, after))
    # libyaml ends a document holding a `|+` block with `...`: such plans are dumped in full.
    if (
        original.endswith("...\n")
        or head_text.endswith("...\n")
        or not original.startswith(head_text + old_rev)
    ):
        return None
    pieces = [head_text, new_rev]
    pos = len(head_text) + len(old_rev)
    if changed:
        # str.count and str.find rather than a regex: the file is scanned at memchr speed.
        if original.count(_ACTION_START, pos - 1) != n:
            return None
        found, at = -1, pos - 1
        for k, act_b, act_a in changed:
            while found < k:
                at = original.find(_ACTION_START, at + 1)
                found += 1
            start = at + 1
            old_text = _dump_action(act_b)
            if original[start : start + len(old_text)] != old_text:
                return None
            new_text = _dump_action(act_a)
            if new_text.endswith("...\n"):
                return None
            pieces += [original[pos:start], new_text]
            pos = start + len(old_text)
    pieces.append(original[pos:])
    return "".join(pieces)


def dumps_plan_after(plan: Plan, path: Path, original: bytes, *, base: Plan | None = None) -> tuple[str, bool]:
    """`dumps_plan(plan)` for a plan about to replace the file `path` holding `original`, and whether
    `original` is known to be a canonical dump (so it holds no comments of the owner's to keep).

    When the cache beside the file shows `original` is exactly the saved form of a known plan, only what
    changed is re-dumped (a merge at 20,000 actions changes a few hundred); otherwise the whole plan is.
    `base`, the plan `plan` was made from, saves validating the cache again when it is the cache's plan.
    """
    if len(original) >= CACHE_MIN_BYTES:
        before = _canonical_plan(path, hashlib.sha256(original).hexdigest(), base)
        if before is not None:
            try:
                text = splice_plan(original.decode("utf-8"), before, plan)
            except ValueError:
                text = None
            if text is not None:
                return text, True
            return dumps_plan(plan), True
    return dumps_plan(plan), False


def _canonical_plan(path: Path, digest: str, base: Plan | None) -> Plan | None:
    """The plan whose `dumps_plan` is exactly the file with this digest, per the cache; None if unknown.

    `base` is that plan when the cache is byte for byte what `base` would write (a plan is loaded, then
    merged: comparing its JSON costs a fraction of validating the cache again); else the cache is read.
    """
    data = _cache_bytes(path, digest)
    if data is None:
        return None
    if base is not None:
        try:
            if data == _cache_body(digest, base, canonical=True):
                return base
        except ValueError:
            pass
    cached = _parse_cache(data, digest)
    return cached[0] if cached is not None and cached[1] else None


def new_file_mode(target: Path) -> int:
    """The mode a replacement of `target` should have: the old file's, or what the umask gives a new file.

    A temporary file is created 0600; renamed into place as it is, a plan or workbook on a shared drive
    would become unreadable to the rest of the team.
    """
    if target.exists():
        return target.stat().st_mode & 0o777
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


# On Windows a file open in another program (Excel, an editor, a virus scanner) cannot be replaced for a
# moment; a few short retries ride that out before the user is told.
REPLACE_RETRIES = (0.1, 0.25, 0.5, 1.0)


def _replace(tmp: str, target: Path) -> None:
    for delay in (*REPLACE_RETRIES, None):
        try:
            os.replace(tmp, target)
            return
        except PermissionError as exc:
            if delay is None:
                raise PlanFileError(
                    "the file is open in another program, or you may not change it",
                    file=target,
                    hint="close it (in Excel or an editor) and run the command again",
                ) from exc
            time.sleep(delay)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace `path` with `data` all at once: temp file beside it, fsync, rename (through a symlink)."""
    target = _real(Path(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, new_file_mode(target))
        _replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    try:
        dir_fd = os.open(target.parent or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def save_plan(
    plan: Plan,
    path: str | os.PathLike[str],
    *,
    text: str | None = None,
    keep_comments: bool = True,
    original: bytes | None = None,
) -> None:
    """Write the plan file atomically (through a symlink); `text` is `dumps_plan(plan)` when known.

    Comments and blank lines the owner wrote in the file being replaced are kept (see comments.py), unless
    the caller knows the file holds none (`keep_comments=False`: it is a canonical dump). `original` is the
    file's bytes when the caller has just read them.
    """
    target = _real(Path(path))
    if target.is_dir():
        raise PlanFileError("this is a directory", file=target, hint="name a .yaml file to write")
    if not target.parent.exists():
        raise PlanFileError("folder does not exist", file=target, hint="create the folder first")
    canonical_text = dumps_plan(plan) if text is None else text
    new_text = canonical_text
    bom = b""
    if keep_comments and target.is_file():
        from .comments import keep_comments as keep

        with contextlib.suppress(OSError, UnicodeDecodeError):
            old = target.read_bytes() if original is None else original
            new_text = keep(old.decode("utf-8-sig"), new_text)
            # A plan saved by a Windows editor keeps its line ends and byte-order mark, so a diff of the
            # file shows only what changed.
            first_line = old.split(b"\n", 1)[0]
            if first_line.endswith(b"\r"):
                new_text = new_text.replace("\r\n", "\n").replace("\n", "\r\n")
            if old.startswith(b"\xef\xbb\xbf"):
                bom = b"\xef\xbb\xbf"
    data = bom + new_text.encode("utf-8")
    atomic_write_bytes(target, data)
    digest = hashlib.sha256(data).hexdigest()
    remember_digest(plan, digest)
    if len(data) >= CACHE_MIN_BYTES:
        _write_cache(target, digest, plan, canonical=new_text == canonical_text)


# `revision` is a top-level key, so in any plan file it starts a line of its own, unindented.
_REVISION_LINE = re.compile(rb"^revision:[ \t]*(\d+)[ \t]*(?:#.*)?\r?$", re.MULTILINE)


def revision_on_disk(data: bytes) -> int:
    """A plan file's revision, read from its own line; the whole file is parsed only if that fails."""
    # Counted with bytes.count (memchr speed) rather than a multi-line regex over a file of many MB.
    at_start = data.startswith(b"revision:")
    if data.count(b"\nrevision:") + at_start == 1:
        found = _REVISION_LINE.match(data, 0 if at_start else data.find(b"\nrevision:") + 1)
        if found:
            return int(found.group(1))
    return loads_plan(data.decode("utf-8-sig")).revision
