"""Golden comparison of the XML parts of one small workbook (volatile parts normalised).

Regenerate after an intended layout change with `DAPLAN_REGEN_GOLDEN=1 python -m pytest tests/test_golden.py`
and review the diff of tests/files/golden/ like any other change.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

from conftest import FILES, fixed_clock, make_plan

from daplan_xlsx.writer import write_workbook

GOLDEN = FILES / "golden" / "small"
# Creation and modification stamps; the clock is fixed, but keep the comparison robust to it anyway.
VOLATILE = re.compile(r"<dcterms:(created|modified)[^>]*>[^<]*</dcterms:\1>")


def parts(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as zf:
        return {
            name: VOLATILE.sub("", zf.read(name).decode("utf-8"))
            for name in sorted(zf.namelist())
            if name.endswith((".xml", ".rels"))
        }


def test_small_plan_matches_golden(tmp_path: Path) -> None:
    out = tmp_path / "small.xlsx"
    write_workbook(make_plan(), out, clock=fixed_clock, issue_id="00000000-0000-4000-8000-000000000000")
    got = parts(out)
    if os.environ.get("DAPLAN_REGEN_GOLDEN"):
        for name, text in got.items():
            target = GOLDEN / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    expected = {
        str(p.relative_to(GOLDEN)): p.read_text(encoding="utf-8")
        for p in sorted(GOLDEN.rglob("*"))
        if p.is_file()
    }
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name] == expected[name], f"{name} differs from the golden copy"
