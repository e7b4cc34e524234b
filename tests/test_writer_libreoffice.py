"""LibreOffice Calc opens a built workbook and prints it; the first area sheet's page is not blank."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from apps import png_is_blank, require, soffice_convert
from conftest import EXAMPLES, fixed_clock, make_plan

from daplan_xlsx.planfile import load_plan
from daplan_xlsx.writer import write_workbook

pytestmark = pytest.mark.slow


def test_libreoffice_prints_first_area_sheet(tmp_path: Path) -> None:
    pdftoppm = require("pdftoppm")
    pdftotext = require("pdftotext")
    plan = load_plan(EXAMPLES[0]) if EXAMPLES else make_plan()
    book = write_workbook(plan, tmp_path / "plan.xlsx", clock=fixed_clock).path
    pdf = soffice_convert(book, "pdf", tmp_path, tmp_path / "profile")
    first_area = plan.areas[0]
    first_action = next(a for a in first_area.actions)
    # Find the page that holds the first area's table header and its first action.
    page = 0
    for n in range(1, 40):
        text = subprocess.run(
            [pdftotext, "-f", str(n), "-l", str(n), "-layout", str(pdf), "-"],
            capture_output=True,
            text=True,
            check=False,
        )
        if text.returncode != 0:
            break
        if first_area.name in text.stdout and "Response" in text.stdout and first_action.id in text.stdout:
            page = n
            break
    assert page, "no page shows the first area sheet"
    subprocess.run(
        [pdftoppm, "-png", "-r", "40", "-f", str(page), "-l", str(page), str(pdf), str(tmp_path / "page")],
        check=True,
        timeout=120,
    )
    pngs = sorted(tmp_path.glob("page*.png"))
    assert pngs, "pdftoppm wrote no page"
    assert not png_is_blank(pngs[0])
