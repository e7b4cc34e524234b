"""The plan file: YAML in, YAML out, deterministic and atomic.

Saving a loaded plan gives back identical bytes: keys follow the model's field order, multi-line text is a
literal block scalar, dates are ISO. libyaml's C loader and dumper are used when present; they produce the
same text as the pure-Python ones and are many times faster on large plans.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import PlanFileError, PlanInvalid
from .model import Plan

# A real plan is well under 1 MB; 20,000 actions with long texts stay under 32 MiB.
MAX_PLAN_BYTES = 32 * 1024 * 1024

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):
    pass


class _PythonDumper(yaml.SafeDumper):
    pass


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


def validation_error(exc: ValidationError, source: object) -> PlanInvalid:
    """The first problem of a pydantic error, as one PlanInvalid naming its place."""
    err = exc.errors(include_url=False)[0]
    where = format_loc(tuple(err["loc"]))
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = f"unknown key {str(err['loc'][-1])!r}"
        hint = "remove it or fix its spelling (see `daplan schema`)"
    elif err["type"] == "missing":
        message = "required key is missing"
        hint = "add it (see `daplan schema`)"
    else:
        message = message.removeprefix("Value error, ")
        hint = PlanInvalid.hint
    if not where and ": " in message:
        # Cross-field rules report their own path at the start of the message.
        where, message = message.split(": ", 1)
    extra = f" ({len(exc.errors())} problems in all)" if exc.error_count() > 1 else ""
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


def read_plan_text(path: Path) -> str:
    """The text of a plan file, refusing what cannot be one before parsing."""
    if not path.exists():
        raise PlanFileError("file not found", file=path, hint="check the path")
    if path.is_dir():
        raise PlanFileError("this is a directory, not a plan file", file=path, hint="name a .yaml file")
    size = path.stat().st_size
    if size > MAX_PLAN_BYTES:
        raise PlanFileError(
            f"file is {size / 1048576:.0f} MiB; a plan file is at most {MAX_PLAN_BYTES // 1048576} MiB",
            file=path,
            hint="check that this is the plan file",
        )
    raw = path.read_bytes()
    if b"\0" in raw:
        raise PlanFileError("this is a binary file, not a YAML plan", file=path, hint="name a .yaml file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanFileError(
            f"not UTF-8 text (bad byte at offset {exc.start})", file=path, hint="save the file as UTF-8"
        ) from exc


def loads_plan(text: str, source: object = "<plan>") -> Plan:
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = exc.problem or exc.context or "YAML syntax error"
        raise PlanFileError(
            f"YAML syntax error: {problem}", file=source, where=where, hint="fix the YAML at that line"
        ) from exc
    except yaml.YAMLError as exc:
        raise PlanFileError(f"YAML error: {exc}", file=source) from exc
    except (ValueError, TypeError, AttributeError) as exc:
        # PyYAML's date constructor raises plain exceptions for a date that does not exist (2014-02-30).
        raise PlanFileError(
            f"a value that looks like a date is not a valid date ({exc})",
            file=source,
            where=_bad_timestamp_line(text),
            hint="write dates as YYYY-MM-DD with a real day and month",
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
    return loads_plan(read_plan_text(p), p)


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


def dumps_plan(plan: Plan) -> str:
    data = _prune(plan.model_dump(mode="python"), top=True)
    options: dict[str, Any] = dict(
        sort_keys=False, allow_unicode=True, default_flow_style=False, width=4096, indent=2
    )
    text: str = yaml.dump(data, Dumper=_Dumper, **options)
    if _Dumper is not _PythonDumper and _C_ONLY_ESCAPES.search(text):
        text = yaml.dump(data, Dumper=_PythonDumper, **options)
    return text


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


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace `path` with `data` all at once: temp file beside it, fsync, rename."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, new_file_mode(target))
        os.replace(tmp, target)
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


def save_plan(plan: Plan, path: str | os.PathLike[str], *, text: str | None = None) -> None:
    """Write the plan file atomically; `text` is `dumps_plan(plan)` when the caller already has it."""
    target = Path(path)
    if target.is_dir():
        raise PlanFileError("this is a directory", file=target, hint="name a .yaml file to write")
    if not target.parent.exists():
        raise PlanFileError("folder does not exist", file=target, hint="create the folder first")
    atomic_write_bytes(target, (dumps_plan(plan) if text is None else text).encode("utf-8"))
