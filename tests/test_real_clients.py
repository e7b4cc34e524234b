"""Returns saved by real apps: LibreOffice Calc edits a workbook through UNO; LibreOffice and Gnumeric
re-save one untouched.

Every check runs on the copies committed in tests/files/clients/ (so it runs where the apps are absent) and,
where the apps are installed (always in CI), on files made afresh by the same code (make_client_files.py).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import make_client_files as C
import openpyxl
import pytest
from apps import require

from daplan_xlsx.diff import Change, DiffResult, diff_return
from daplan_xlsx.meta import IssueMeta
from daplan_xlsx.reader import Proposal, read_return

OLD_RESPONSE = '=HYPERLINK("http://example.org")\nSecond line with ünïcödé'
FRESH = pytest.param("fresh", marks=[pytest.mark.slow, pytest.mark.libreoffice])
SOURCES = ["committed", FRESH]


def require_uno() -> str:
    """The interpreter with python3-uno; skips (or fails under DAPLAN_REQUIRE_APPS) when there is none."""
    if C.has_uno():
        return C.uno_python()
    message = f"{C.uno_python()} cannot import uno (python3-uno is not installed)"
    if os.environ.get("DAPLAN_REQUIRE_APPS"):
        pytest.fail(message + " (DAPLAN_REQUIRE_APPS is set: CI must run the real-client tests)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def libreoffice_made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A freshly issued workbook, edited by LibreOffice and re-saved by it untouched (one soffice each)."""
    require("soffice")
    require_uno()
    work = tmp_path_factory.mktemp("libreoffice")
    issued = C.issue(work / "issued.xlsx")
    # The two soffice runs (each with its own profile and port) overlap: most of each is start-up. Each
    # opens its own copy, because the first to open a file locks it against the other.
    copy = shutil.copyfile(issued, work / "issued-copy.xlsx")
    with ThreadPoolExecutor(2) as pool:
        edit = pool.submit(C.libreoffice, issued, work / C.EDITED, C.EDITS)
        resave = pool.submit(C.libreoffice, copy, work / C.LO_RESAVED, [])
        reports = edit.result(), resave.result()
    return {
        "edited": work / C.EDITED,
        "edit_report": reports[0],
        "resaved": work / C.LO_RESAVED,
        "resave_report": reports[1],
    }


@pytest.fixture(scope="module")
def gnumeric_made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("ssconvert")
    work = tmp_path_factory.mktemp("gnumeric")
    out = work / C.GNUMERIC_RESAVED
    C.gnumeric(C.issue(work / "issued.xlsx"), out)
    return out


def client_file(source: str, name: str, request: pytest.FixtureRequest) -> Path:
    if source == "committed":
        path = C.CLIENTS / name
        assert path.is_file(), f"{path} is missing: run python tests/make_client_files.py"
        return path
    if name == C.GNUMERIC_RESAVED:
        made: Path = request.getfixturevalue("gnumeric_made")
        return made
    key = {C.EDITED: "edited", C.LO_RESAVED: "resaved"}[name]
    return Path(request.getfixturevalue("libreoffice_made")[key])


def diff(path: Path) -> DiffResult:
    result = diff_return(path, C.client_plan())
    # Always a three-way reading against the base the file carries, from the issue the tests rebuild.
    assert result.reading.meta.verdict == "unsigned"
    assert not result.reading.two_way
    assert result.reading.issue_id == C.ISSUE_ID
    return result


def findings(result: DiffResult) -> list[tuple[str, str, str, str, str]]:
    return [(f.kind, f.sheet, f.cell, f.action_id, f.severity) for f in result.findings]


# -- LibreOffice: a recipient's edits -----------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_libreoffice_edits_diff_exactly(source: str, request: pytest.FixtureRequest) -> None:
    """Calc's edits read back as exactly three changes (cells as sorted) plus the two row findings."""
    path = client_file(source, C.EDITED, request)
    result = diff(path)
    assert result.changes == [
        Change("LG-1", "response", OLD_RESPONSE, C.RESPONSE, C.LG, "D9"),
        Change("IC-1", "due", "", "2016-03-31", C.IC, "F6"),
        Change("IC-1", "status", "Not started", "At risk", C.IC, "H6"),
    ]
    assert findings(result) == [
        ("new-row", C.LG, "A8", "", "warning"),
        ("row-deleted", C.LG, "", "LG-L1", "problem"),
    ]
    assert result.reading.proposals == [Proposal(C.LG, 8, C.NEW_ROW)]
    # The sort and the inserted row really moved the rows; the untouched ones still read as issued.
    rows = result.reading.rows
    assert {a: (r.sheet, r.row) for a, r in rows.items()} == {
        "LG-2": (C.LG, 6),
        "LG-L2": (C.LG, 7),
        "LG-1": (C.LG, 9),
        "IC-1": (C.IC, 6),
    }
    assert rows["LG-2"].changed(result.reading.base["LG-2"]) == {}
    assert rows["LG-L2"].changed(result.reading.base["LG-L2"]) == {}


@pytest.mark.parametrize("source", SOURCES)
def test_libreoffice_stored_what_was_typed(source: str, request: pytest.FixtureRequest) -> None:
    """The file holds what a UK user's typing makes: a date cell in Due, line breaks in the response."""
    path = client_file(source, C.EDITED, request)
    wb = openpyxl.load_workbook(path)
    try:
        due = wb[C.IC]["F6"]
        # A number with a date format (openpyxl gives a datetime), not the text "31/03/2016".
        assert due.value == dt.datetime(2016, 3, 31)
        assert wb[C.IC]["H6"].value == "At risk"
        assert wb[C.LG]["D9"].value == C.RESPONSE
        assert wb[C.LG]["A8"].value is None and wb[C.LG]["C8"].value == C.NEW_ROW["action"]
    finally:
        wb.close()


@pytest.mark.slow
@pytest.mark.libreoffice
def test_libreoffice_parsed_typed_input_in_the_uk_locale(libreoffice_made: dict[str, Any]) -> None:
    """lo_edit types as a UK user does: 31/03/2016 becomes the date serial of 31 March 2016, not text."""
    report = libreoffice_made["edit_report"]
    assert report["locale"] == "en-GB"
    typed = {(e["sheet"], e["cell"]): e for e in report["edits"] if e["op"] == "set"}
    due = typed[(C.IC, "F6")]
    assert (due["type"], due["value"]) == ("VALUE", 42460.0)  # 2016-03-31 in Excel's 1900 system
    assert typed[(C.IC, "H6")]["type"] == "TEXT"


# -- re-saves without edits ---------------------------------------------------------------------------------


def assert_untouched(path: Path) -> None:
    result = diff(path)
    assert result.changes == []
    assert result.findings == []
    assert result.reading.proposals == []
    assert set(result.reading.rows) == set(C.client_plan().action_index())


@pytest.mark.parametrize("source", SOURCES)
def test_libreoffice_resave_without_edits_diffs_empty(source: str, request: pytest.FixtureRequest) -> None:
    """A LibreOffice re-save of an untouched workbook changes nothing and finds nothing."""
    assert_untouched(client_file(source, C.LO_RESAVED, request))


@pytest.mark.parametrize("source", ["committed", pytest.param("fresh", marks=pytest.mark.slow)])
def test_gnumeric_resave_without_edits_diffs_empty(source: str, request: pytest.FixtureRequest) -> None:
    """A Gnumeric (ssconvert) re-save of an untouched workbook changes nothing and finds nothing."""
    assert_untouched(client_file(source, C.GNUMERIC_RESAVED, request))


# -- the committed files belong to the issue the tests rebuild ----------------------------------------------


def issue_meta(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    meta = read_return(path, C.client_plan()).meta.meta
    assert isinstance(meta, IssueMeta)
    return meta.header(), {a: meta.base_of(a) for a in meta.scope}


@pytest.mark.parametrize("name", C.CLIENT_FILES)
def test_committed_file_carries_the_issue_rebuilt_today(name: str, tmp_path: Path) -> None:
    """Each committed file's metadata is what issuing the client plan today writes, base values included."""
    rebuilt = issue_meta(C.issue(tmp_path / "issued.xlsx"))
    assert issue_meta(C.CLIENTS / name) == rebuilt
    assert rebuilt[0]["issue_id"] == C.ISSUE_ID


def test_clients_readme_has_a_line_for_each_file() -> None:
    """tests/files/clients/README.md says how every committed file was made, one line each."""
    readme = (C.CLIENTS / "README.md").read_text(encoding="utf-8")
    listed = re.findall(r"^- `([^`]+)`: (.+)$", readme, flags=re.MULTILINE)
    committed = sorted(p.name for p in C.CLIENTS.glob("*.xlsx"))
    assert sorted(name for name, _ in listed) == committed == sorted(C.CLIENT_FILES)
    for name, how in listed:
        app = "Gnumeric" if name.startswith("gnumeric") else "LibreOffice"
        assert re.search(rf"{app} \d+(\.\d+)+", how), f"{name}: no app and version in {how!r}"


@pytest.mark.parametrize("name", C.CLIENT_FILES)
def test_committed_file_was_saved_by_the_app_its_readme_line_names(name: str) -> None:
    """The app that last saved each committed file (docProps/app.xml) is the one its README line names."""
    readme = (C.CLIENTS / "README.md").read_text(encoding="utf-8")
    how = dict(re.findall(r"^- `([^`]+)`: (.+)$", readme, flags=re.MULTILINE))[name]
    with zipfile.ZipFile(C.CLIENTS / name) as zf:
        app = re.search(r"<Application>([^<]*)</Application>", zf.read("docProps/app.xml").decode())
    assert app is not None
    if name.startswith("gnumeric"):
        assert app[1] == "gnumeric" and "Gnumeric " in how
    else:
        version = re.match(r"LibreOffice/([\d.]+)", app[1])
        assert version is not None, app[1]
        assert f"LibreOffice {version[1]} " in how
