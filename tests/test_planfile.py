"""The plan file: deterministic YAML round trips, atomic saves, and one-line errors for every bad file."""

from __future__ import annotations

import datetime as dt
import os
import re
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, ROOT, TEMPLATES, make_plan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daplan_xlsx import planfile
from daplan_xlsx.errors import DaplanError, PlanFileError, PlanInvalid
from daplan_xlsx.model import (
    EXCEL_CELL_LIMIT,
    FIRST_DUE,
    Action,
    Area,
    GlossaryEntry,
    Lead,
    Plan,
    Status,
    check_text,
    plan_problems,
    sheet_name_problem,
)
from daplan_xlsx.planfile import dumps_plan, load_plan, loads_plan, save_plan

# --- (a) round trip property ----------------------------------------------------------------------------

# XML 1.0 forbidden characters (besides surrogates, excluded by category) and CR (line endings stay LF).
_EXCLUDED = "".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n") + "\ufffe\uffff"

# Strings YAML would read as something else, or that a spreadsheet would take for a formula.
TRICKY = [
    "2015",
    "2014/15",
    "2014-09-01",
    "true",
    "no",
    "Yes",
    "null",
    "~",
    "0x1F",
    "0o17",
    "1e3",
    ".inf",
    "-1",
    "- item",
    ": x",
    "a: b",
    "#comment",
    "x #not a comment",
    "=SUM(A1:A3)",
    "+44 1234",
    "-starts with a minus",
    "@mention",
    "'single'",
    '"double"',
    "&anchor",
    "*alias",
    "!tag",
    "%directive",
    "|",
    ">",
    "[a, b]",
    "{a: b}",
    "",
    " ",
    "trailing spaces   ",
    "   leading spaces",
    "\n",
    "\n\nleading blank lines",
    "two lines\nsecond",
    "trailing newline\n",
    "trailing newlines\n\n\n",
    "line with trailing space \nnext",
    "\ttabbed\n\tlines\t",
    "emoji 😀 and 👩‍👩‍👧 family",
    "中文 العربية हिन्दी Ελληνικά кириллица",
    "non-breaking\u00a0space",
    "line\u2028separator",
    "next\x85line",
    "zero\u200bwidth",
    "\ufeffbom",
    "x" * EXCEL_CELL_LIMIT,
    ("long paragraph " * 400).strip(),
]


def _text_ok(value: str) -> bool:
    try:
        check_text(value)
    except ValueError:
        return False
    return "\r" not in value


_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters=_EXCLUDED)
_FAVOURITES = st.sampled_from(list("\n\t  =+-@'\":#|>&*!%[]{},?😀é中ع\u00a0\u2028\x85"))
TEXT = st.one_of(
    st.sampled_from(TRICKY),
    st.text(st.one_of(_CHARS, _FAVOURITES), max_size=60),
).filter(_text_ok)
NAME = st.one_of(
    st.sampled_from([t for t in TRICKY if t and len(t) <= 255]),
    st.text(st.one_of(_CHARS, _FAVOURITES), min_size=1, max_size=40),
).filter(_text_ok)
IDENT = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}\Z")
SHEET = st.text(
    st.sampled_from(string.ascii_letters + string.digits + " -&'().,é中"), min_size=1, max_size=31
).filter(lambda s: sheet_name_problem(s) is None)
COLOUR = st.integers(0, 0xFFFFFF).map(lambda n: f"#{n:06X}")
_ZONES = [
    None,
    dt.timezone.utc,
    dt.timezone(dt.timedelta(hours=1)),
    dt.timezone(dt.timedelta(hours=-5, minutes=-30)),
]
DATETIME = st.builds(
    lambda d, tz: d.replace(tzinfo=tz),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    st.sampled_from(_ZONES),
)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    """Valid plans with awkward text everywhere."""
    status_names = draw(st.lists(NAME, min_size=1, max_size=4, unique=True))
    statuses = [
        Status(name=n, colour=draw(COLOUR), meaning=draw(TEXT), closed=draw(st.booleans()))
        for n in status_names
    ]
    lead_names = draw(st.lists(NAME, max_size=4, unique=True))
    leads = [
        Lead(name=n, email=draw(st.sampled_from(["", "lead@example.org"])), notes=draw(TEXT))
        for n in lead_names
    ]
    area_ids = draw(st.lists(IDENT, max_size=3, unique=True))
    sheets = draw(st.lists(SHEET, min_size=len(area_ids), max_size=len(area_ids), unique_by=str.casefold))
    counts = [draw(st.integers(0, 3)) for _ in area_ids]
    action_ids = iter(draw(st.lists(IDENT, min_size=sum(counts), max_size=sum(counts), unique=True)))
    areas = []
    for area_id, sheet, count in zip(area_ids, sheets, counts, strict=True):
        actions = [
            Action(
                id=next(action_ids),
                ref=draw(TEXT),
                kind=draw(st.sampled_from(["national", "local"])),
                action=draw(TEXT),
                response=draw(TEXT),
                target=draw(TEXT),
                due=draw(st.none() | st.dates(FIRST_DUE)),
                leads=draw(st.lists(st.sampled_from(lead_names), unique=True, max_size=3))
                if lead_names
                else [],
                status=draw(st.sampled_from(status_names)),
                updated=draw(st.none() | DATETIME),
                updated_by=draw(TEXT),
                notes=draw(TEXT),
            )
            for _ in range(count)
        ]
        areas.append(
            Area(
                id=area_id,
                name=draw(NAME),
                sheet=sheet,
                key_criteria=draw(TEXT),
                supporting_areas=draw(st.lists(TEXT, max_size=3)),
                actions=actions,
            )
        )
    return Plan(
        id=draw(IDENT),
        title=draw(NAME),
        force=draw(TEXT),
        published=draw(st.none() | st.dates()),
        classification=draw(NAME),
        revision=draw(st.integers(1, 10**12)),
        background=draw(TEXT),
        overarching_capabilities=draw(TEXT),
        statuses=statuses,
        leads=leads,
        areas=areas,
        glossary=[
            GlossaryEntry(term=draw(NAME), definition=draw(TEXT)) for _ in range(draw(st.integers(0, 2)))
        ],
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(plans())
def test_dump_load_round_trip_is_exact_and_stable(plan: Plan) -> None:
    """dumps → loads gives an equal plan, and dumping that again gives identical text."""
    text = dumps_plan(plan)
    again = loads_plan(text)
    assert again == plan
    assert dumps_plan(again) == text
    assert plan_problems(again) == []


@pytest.mark.parametrize("value", TRICKY, ids=lambda v: repr(v[:20]))
def test_each_tricky_string_round_trips_in_every_kind_of_field(value: str) -> None:
    """Every tricky string survives as a response, a lead name, a status meaning and a list item."""
    plan = make_plan()
    plan.areas[0].actions[0].response = value
    plan.areas[0].supporting_areas.append(value)
    plan.statuses[0].meaning = value
    if value:
        plan.leads.append(Lead(name=value[:255]))
        plan.areas[1].actions[0].leads.append(value[:255])
    text = dumps_plan(plan)
    again = loads_plan(text)
    assert again == plan
    assert dumps_plan(again) == text


def test_dates_keep_their_type_and_stamps_are_kept_in_utc() -> None:
    """A stamp is loaded as the same instant in UTC, whole seconds, so one instant has one spelling."""
    plan = make_plan()
    when = dt.datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    plan.areas[0].actions[0].updated = when
    plan.areas[0].actions[0].due = dt.date(2015, 3, 31)
    again = loads_plan(dumps_plan(plan))
    action = again.areas[0].actions[0]
    assert action.updated == when.replace(microsecond=0)
    assert action.updated is not None and action.updated.utcoffset() == dt.timedelta(0)
    assert "updated: 2026-03-29T00:30:15+00:00\n" in dumps_plan(again)
    assert action.due == dt.date(2015, 3, 31)
    assert "due: 2015-03-31\n" in dumps_plan(again)


def test_multi_line_text_is_a_literal_block() -> None:
    """Diff-friendly: a multi-line response is written as lines, not as an escaped string."""
    text = dumps_plan(make_plan())
    assert "    response: |-\n      =HYPERLINK(" in text
    assert "      Second line with ünïcödé\n" in text


def test_keys_follow_the_model_order() -> None:
    data = yaml.safe_load(dumps_plan(make_plan()))
    assert list(data)[:6] == ["id", "title", "force", "published", "classification", "revision"]
    assert list(data["areas"][0]["actions"][0])[:4] == ["id", "ref", "kind", "action"]


# --- (b) atomic save ------------------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A folder holding one saved plan file and nothing else."""
    path = tmp_path / "plan.yaml"
    save_plan(make_plan(), path)
    return path


def _changed_plan() -> Plan:
    plan = make_plan()
    plan.revision = 2
    plan.areas[0].actions[0].response = "changed"
    return plan


@pytest.mark.parametrize("fails", ["replace", "fsync"])
def test_a_failed_save_leaves_the_file_byte_identical(
    saved: Path, monkeypatch: pytest.MonkeyPatch, fails: str
) -> None:
    before = saved.read_bytes()

    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(planfile.os, fails, boom)
    with pytest.raises(OSError, match="No space left"):
        save_plan(_changed_plan(), saved)
    monkeypatch.undo()
    assert saved.read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == ["plan.yaml"]


def test_an_interrupted_save_leaves_no_temp_file(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even Ctrl-C between write and rename cleans up."""
    before = saved.read_bytes()

    def interrupt(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(planfile.os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_plan(_changed_plan(), saved)
    monkeypatch.undo()
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == ["plan.yaml"]


def test_a_successful_save_replaces_the_file_and_keeps_its_mode(saved: Path) -> None:
    os.chmod(saved, 0o640)
    save_plan(_changed_plan(), saved)
    assert load_plan(saved) == _changed_plan()
    assert saved.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in saved.parent.iterdir()] == ["plan.yaml"]


def test_saving_into_a_missing_folder(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "plan.yaml"
    with pytest.raises(PlanFileError) as info:
        save_plan(make_plan(), target)
    assert str(target) in info.value.one_line()
    assert "folder does not exist" in info.value.what
    assert not target.parent.exists()


def test_saving_onto_a_directory(tmp_path: Path) -> None:
    target = tmp_path / "plan.yaml"
    target.mkdir()
    with pytest.raises(PlanFileError) as info:
        save_plan(make_plan(), target)
    assert str(target) in info.value.one_line()
    assert target.is_dir() and list(target.iterdir()) == []


# --- (c) bad plan files ---------------------------------------------------------------------------------


def _load_error(path: Path, kind: type[DaplanError] = PlanFileError) -> DaplanError:
    """Load `path`, expecting `kind`; check the one-line message names the file."""
    with pytest.raises(kind) as info:
        load_plan(path)
    exc = info.value
    assert type(exc) is kind
    line = exc.one_line()
    assert "\n" not in line
    assert exc.file == str(path)
    assert str(path) in line
    if exc.where:
        assert exc.where in line
    return exc


def _write_data(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("id: p\ntitle: T\n  revision: 2\nareas: []\n", encoding="utf-8")
    exc = _load_error(path)
    assert exc.where is not None and exc.where.startswith("line 3, column ")
    assert exc.what.startswith("YAML syntax error: ")


def test_yaml_syntax_error_unclosed_bracket(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("id: p\ntitle: T\nareas:\n- id: A\n  name: [oops\n  sheet: A\n", encoding="utf-8")
    exc = _load_error(path)
    assert exc.where is not None and exc.where.startswith("line ")


@pytest.mark.parametrize(
    ("path", "value", "where", "fragment"),
    [
        (("areas", 0, "actions", 0, "owner"), "me", "areas[0].actions[0].owner", "unknown key 'owner'"),
        (("revision",), "two", "revision", "valid integer"),
        (("areas", 1, "actions", 0, "id"), "LG-1", "areas[1].actions[0].id", "'LG-1' is already used"),
        (("areas", 1, "actions", 0, "leads"), ["Nobody"], "areas[1].actions[0].leads[0]", "lead register"),
        (("areas", 0, "actions", 1, "status"), "Green", "areas[0].actions[1].status", "plan's statuses"),
    ],
    ids=["unknown-key", "wrong-type", "duplicate-id", "unknown-lead", "unknown-status"],
)
def test_invalid_plan_file_names_the_place(
    tmp_path: Path, path: tuple[Any, ...], value: Any, where: str, fragment: str
) -> None:
    data = make_plan().model_dump(mode="json")
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    exc = _load_error(_write_data(tmp_path / "plan.yaml", data), PlanInvalid)
    assert exc.where == where
    assert fragment in exc.what


def test_missing_file(tmp_path: Path) -> None:
    exc = _load_error(tmp_path / "absent.yaml")
    assert exc.what == "file not found"


def test_a_directory(tmp_path: Path) -> None:
    folder = tmp_path / "plan.yaml"
    folder.mkdir()
    assert "directory" in _load_error(folder).what


def test_binary_junk(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes(os.urandom(2000) + b"\0" + os.urandom(2000))
    assert "binary file" in _load_error(path).what


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes(b"id: p\ntitle: Caf\xe9 plan\n")
    exc = _load_error(path)
    assert "not UTF-8" in exc.what
    assert "offset 16" in exc.what


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    """Windows editors add a BOM; it is not part of the plan."""
    path = tmp_path / "plan.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + dumps_plan(make_plan()).encode())
    assert load_plan(path) == make_plan()


def test_a_50_mb_file_is_refused_by_size_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A huge file is refused from its size alone: never read, never parsed."""
    path = tmp_path / "plan.yaml"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(dumps_plan(make_plan()))
        fh.write(("#" + "p" * 1022 + "\n") * (50 * 1024))
    assert path.stat().st_size > 50 * 1024 * 1024

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the file was read or parsed")

    monkeypatch.setattr(Path, "read_bytes", never)
    monkeypatch.setattr(Path, "read_text", never)
    monkeypatch.setattr(planfile.yaml, "load", never)
    exc = _load_error(path)
    assert "MiB" in exc.what and "at most 32 MiB" in exc.what


def test_a_sparse_50_mb_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    with path.open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    assert "at most 32 MiB" in _load_error(path).what


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n", "---\n"])
def test_an_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(content, encoding="utf-8")
    assert "does not hold a plan" in _load_error(path).what


@pytest.mark.parametrize("content", ["- title: T\n- areas: []\n", "just a string\n", "42\n"])
def test_yaml_that_is_not_a_mapping(tmp_path: Path, content: str) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(content, encoding="utf-8")
    assert "does not hold a plan" in _load_error(path).what


@pytest.mark.parametrize(
    "line", ["published: 2014-02-30", "published: 2014-13-01", "published: !!timestamp soon"]
)
def test_an_impossible_date_is_a_plan_file_error(tmp_path: Path, line: str) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(f"id: p\ntitle: T\n{line}\n", encoding="utf-8")
    exc = _load_error(path, PlanFileError)
    assert exc.where is not None and exc.where.startswith("line 3")


# --- (d) bundled examples and templates -----------------------------------------------------------------


def _bundled(files: list[Path], folder: str) -> list[Any]:
    if files:
        return [pytest.param(p, id=f"{folder}/{p.name}") for p in files]
    return [pytest.param(None, id=f"{folder}-none", marks=pytest.mark.skip(reason=f"no {folder}/*.yaml yet"))]


BUNDLED = _bundled(EXAMPLES, "examples") + _bundled(TEMPLATES, "templates")


def test_examples_folder_is_not_silently_skipped() -> None:
    """If examples/ holds any file at all, at least one of them is a .yaml plan."""
    folder = ROOT / "examples"
    present = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    if not present:
        pytest.skip("examples/ is empty (the example plans have not been written yet)")
    assert EXAMPLES, f"examples/ holds {[p.name for p in present]} but no .yaml plan"


@pytest.mark.parametrize("path", BUNDLED)
def test_bundled_plan_loads_validates_and_saves_byte_identical(path: Path, tmp_path: Path) -> None:
    plan = load_plan(path)
    assert plan_problems(plan) == []
    assert plan.areas, "a bundled plan has capability areas"
    assert dumps_plan(plan).encode("utf-8") == path.read_bytes()
    copy = tmp_path / path.name
    save_plan(plan, copy)
    assert copy.read_bytes() == path.read_bytes()


# Words that would say where the project got a plan's text rather than what the published plan says.
_PROVENANCE = re.compile(r"extract|seed|\bpdf\b|\.txt\b|shared/|\b\d{3}_[0-9a-f]{8}", re.IGNORECASE)


@pytest.mark.parametrize("path", BUNDLED)
def test_bundled_text_speaks_of_the_published_plan_not_of_files(path: Path) -> None:
    """Notes say "the published plan" or "the source text", never how the text reached this project."""
    text = path.read_text(encoding="utf-8")
    assert _PROVENANCE.search(text) is None, _PROVENANCE.search(text)


def _west_yorkshire() -> dict[str, Any]:
    path = ROOT / "examples" / "west-yorkshire-2014.yaml"
    if not path.is_file():
        pytest.skip("no West Yorkshire example")
    return {a.id: a for _, a in load_plan(path).iter_actions()}


def test_west_yorkshire_lg3_keeps_its_own_wording() -> None:
    """The source prints "across the force area scrutiny and challenge"; the national wording's "subject
    to" is not restored into it (its wording differs from Avon and Somerset's elsewhere too)."""
    lg3 = _west_yorkshire()["LG-3"]
    assert "[subject to]" not in lg3.action and "subject to" not in lg3.action
    assert "across the force area scrutiny and challenge, this includes" in lg3.action
    assert "threat/risk/harm/demand" in lg3.action
    assert "as the West Yorkshire plan prints it" in lg3.notes
    assert '"subject to scrutiny and challenge"' in lg3.notes


def test_west_yorkshire_lg1_and_lg2_record_the_other_reading_of_their_leads() -> None:
    actions = _west_yorkshire()
    assert actions["LG-1"].leads == []
    assert actions["LG-2"].leads == ["Chief Constable", "ACC Domestic Abuse"]
    for ident in ("LG-1", "LG-2"):
        notes = actions[ident].notes
        assert "Another reading is that they belong one to each" in notes, ident
        assert '"Chief Constable" to' in notes and '"ACC Domestic Abuse" to' in notes, ident


# --- (e) the C and the pure-Python dumper agree ---------------------------------------------------------


class _PyDumper(yaml.SafeDumper):
    """The pure-Python dumper with the plan file's representers."""


_PyDumper.add_representer(str, planfile._represent_str)
_PyDumper.add_representer(dt.datetime, planfile._represent_datetime)

needs_libyaml = pytest.mark.skipif(not hasattr(yaml, "CSafeDumper"), reason="PyYAML built without libyaml")


def _dump_both(plan: Plan) -> tuple[str, str]:
    """The plan dumped by the module (libyaml) and by the pure-Python emitter, same options."""
    data = planfile._prune(plan.model_dump(mode="python"), top=True)
    kwargs: dict[str, Any] = dict(
        sort_keys=False, allow_unicode=True, default_flow_style=False, width=4096, indent=2
    )
    return dumps_plan(plan), yaml.dump(data, Dumper=_PyDumper, **kwargs)


@needs_libyaml
def test_module_uses_libyaml_when_present() -> None:
    assert issubclass(planfile._Dumper, yaml.CSafeDumper)


@needs_libyaml
@pytest.mark.parametrize("path", [pytest.param(None, id="conftest-plan"), *BUNDLED])
def test_c_and_python_dumpers_agree(path: Path | None) -> None:
    plan = make_plan() if path is None else load_plan(path)
    c_text, py_text = _dump_both(plan)
    assert c_text == py_text


@needs_libyaml
@pytest.mark.parametrize("text", ["emoji 😀", "two lines 😀\nsecond", "next\x85line"])
def test_c_and_python_dumpers_agree_on_astral_characters(text: str) -> None:
    plan = make_plan()
    plan.areas[0].actions[0].notes = text
    c_text, py_text = _dump_both(plan)
    assert c_text == py_text


# --- partial re-dump and the cache beside large plans ---------------------------------------------------

_FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "ref": TEXT,
    "kind": st.sampled_from(["national", "local"]),
    "action": TEXT,
    "response": TEXT,
    "target": TEXT,
    "due": st.none() | st.dates(FIRST_DUE),
    "updated": st.none() | DATETIME,
    "updated_by": TEXT,
    "notes": TEXT,
}


@st.composite
def edited(draw: st.DrawFn) -> tuple[Plan, Plan]:
    """A plan and a copy with some action fields (and perhaps the revision) changed, as a merge does."""
    before = draw(plans())
    after = before.model_copy(deep=True)
    actions = [a for _, a in after.iter_actions()]
    for _ in range(draw(st.integers(0, 4))) if actions else ():
        action = draw(st.sampled_from(actions))
        field = draw(st.sampled_from(sorted(_FIELD_VALUES)))
        setattr(action, field, draw(_FIELD_VALUES[field]))
        if draw(st.booleans()):
            action.status = draw(st.sampled_from(after.status_names()))
    if draw(st.booleans()):
        after.revision += draw(st.integers(1, 3))
    return before, Plan.model_validate(after.model_dump())


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(edited())
def test_splicing_the_changed_actions_gives_exactly_the_full_dump(pair: tuple[Plan, Plan]) -> None:
    before, after = pair
    text, full = dumps_plan(before), dumps_plan(after)
    spliced = planfile.splice_plan(text, before, after)
    if spliced is None:
        # Declined only for a keep-chomping block (`|+`), after which libyaml closes the document with `...`.
        assert any(re.search(r"^.*: \|\d?\+$|^- \|\d?\+$|^\.\.\.$", t, re.MULTILINE) for t in (text, full))
    else:
        assert spliced == full


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_splicing_each_example(example: Path) -> None:
    before = load_plan(example)
    after = before.model_copy(deep=True)
    for k, (_, action) in enumerate(after.iter_actions()):
        if k % 3 == 0:
            action.response = f"{action.response}\nUpdate {k}: 'quoted' =SUM(A1) 😀 line\u2028break"
            action.updated = dt.datetime(2015, 3, 31, 9, 30, tzinfo=dt.timezone.utc)
        if k % 5 == 0:
            action.notes = ""
    after.revision += 1
    text = example.read_text(encoding="utf-8")
    assert text == dumps_plan(before)
    assert planfile.splice_plan(text, before, after) == dumps_plan(after)


def test_splicing_refuses_what_it_does_not_handle() -> None:
    before = make_plan()
    text = dumps_plan(before)
    moved = before.model_copy(deep=True)
    moved.areas[0].actions.reverse()
    retitled = before.model_copy(deep=True)
    retitled.title = "Another title"
    removed = before.model_copy(deep=True)
    removed.areas[0].actions.pop()
    for after in (moved, retitled, removed):
        assert planfile.splice_plan(text, before, after) is None
    changed = before.model_copy(deep=True)
    changed.areas[0].actions[0].response = "new"
    # A file that is not the plain dump of `before` (here: a comment) is not spliced.
    assert planfile.splice_plan("# note\n" + text, before, changed) is None
    edited_text = text.replace("  - id: ", "  - id:  ", 1)
    assert planfile.splice_plan(edited_text, before, changed) is None


@pytest.fixture
def cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A saved plan with its cache beside it (every plan counts as large here)."""
    monkeypatch.setattr(planfile, "CACHE_MIN_BYTES", 0)
    path = tmp_path / "plan.yaml"
    save_plan(make_plan(), path)
    assert planfile.cache_path(path).exists()
    return path


def _never_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the YAML was parsed")

    monkeypatch.setattr(planfile.yaml, "load", never)


def test_a_plan_loads_from_its_cache_equal_to_the_yaml(cached: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_yaml = loads_plan(cached.read_text(encoding="utf-8"))
    with monkeypatch.context() as m:
        _never_parse(m)
        assert load_plan(cached) == from_yaml == make_plan()
    assert dumps_plan(load_plan(cached)).encode("utf-8") == cached.read_bytes()


def test_a_stale_cache_is_ignored(cached: Path) -> None:
    edited_plan = make_plan()
    edited_plan.title = "Edited by hand"
    cached.write_text(dumps_plan(edited_plan), encoding="utf-8")
    assert load_plan(cached).title == "Edited by hand"
    # ...and rewritten for the new bytes.
    assert planfile._read_cache(cached, planfile.hashlib.sha256(cached.read_bytes()).hexdigest()) is not None


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],
        lambda b: b"",
        lambda b: b"not json at all",
        lambda b: b.replace(b'"title":"', b'"title":"X', 1).replace(b'"revision":', b'"revision":-', 1),
        lambda b: b.replace(b'"plan":{', b'"plan":{"unknown":1,', 1),
    ],
    ids=["torn", "empty", "garbage", "invalid-plan", "unknown-key"],
)
def test_a_corrupt_cache_is_ignored(cached: Path, damage: Any) -> None:
    sidecar = planfile.cache_path(cached)
    sidecar.write_bytes(damage(sidecar.read_bytes()))
    assert load_plan(cached) == make_plan()


def test_a_cache_naming_other_bytes_is_never_used(cached: Path) -> None:
    """A cache whose plan differs from the file but whose hash does not match is not believed."""
    other = make_plan()
    other.title = "Not the file's plan"
    planfile._write_cache(cached, "0" * 64, other, canonical=True)
    assert load_plan(cached) == make_plan()


def test_a_read_only_folder_loads_and_merges_without_a_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planfile, "CACHE_MIN_BYTES", 0)
    path = tmp_path / "plan.yaml"
    path.write_text(dumps_plan(make_plan()), encoding="utf-8")

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    # The folder cannot be written (done by patching: the tests may run as root, who ignores modes).
    monkeypatch.setattr(planfile.tempfile, "mkstemp", refused)
    assert load_plan(path) == make_plan()
    assert [p.name for p in tmp_path.iterdir()] == ["plan.yaml"]


def test_small_plans_keep_no_cache(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    save_plan(make_plan(), path)
    load_plan(path)
    assert [p.name for p in tmp_path.iterdir()] == ["plan.yaml"]


def test_dumps_plan_after_splices_only_over_a_canonical_file(
    cached: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = make_plan()
    changed.areas[0].actions[0].response = "spliced"
    changed.revision += 1
    original = cached.read_bytes()
    calls: list[str] = []
    real = planfile.splice_plan
    monkeypatch.setattr(planfile, "splice_plan", lambda *a: calls.append("splice") or real(*a))
    assert planfile.dumps_plan_after(changed, cached, original)[0] == dumps_plan(changed)
    assert calls == ["splice"]
    # A file only loaded (perhaps written by hand) is re-dumped in full.
    cached.write_bytes(original + b"# a comment\n")
    load_plan(cached)
    calls.clear()
    assert planfile.dumps_plan_after(changed, cached, cached.read_bytes())[0] == dumps_plan(changed)
    assert calls == []


def test_dumps_plan_after_takes_the_base_plan_when_the_cache_is_its_very_bytes(
    cached: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merge passes the plan it loaded: equal to the cache, it is used without validating the cache again."""
    base = load_plan(cached)
    changed = base.model_copy(deep=True)
    changed.areas[0].actions[0].response = "spliced"
    changed.revision += 1
    original = cached.read_bytes()
    validated: list[bool] = []
    real = planfile._Cache.model_validate_json
    monkeypatch.setattr(
        planfile._Cache, "model_validate_json", lambda *a, **k: validated.append(True) or real(*a, **k)
    )
    assert planfile.dumps_plan_after(changed, cached, original, base=base)[0] == dumps_plan(changed)
    assert validated == []


def test_dumps_plan_after_does_not_believe_a_base_that_differs_from_the_file(cached: Path) -> None:
    """A base changed after loading is not the file's plan: the file's own (cached) plan is spliced over."""
    base = load_plan(cached)
    base.areas[0].actions[1].response = "changed in memory, never saved"
    changed = load_plan(cached)
    changed.areas[0].actions[0].response = "spliced"
    original = cached.read_bytes()
    assert planfile.dumps_plan_after(changed, cached, original, base=base)[0] == dumps_plan(changed)
