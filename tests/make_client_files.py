"""Returns made by the recipients' real apps, for test_real_clients.py; run as a script, it rewrites them.

A workbook is issued from a fixed plan (make_plan(n_local=2)) with a fixed clock and issue id, so it can be
rebuilt identically anywhere; LibreOffice Calc then edits it as a recipient would (through UNO, with
tests/lo_edit.py), LibreOffice re-saves it untouched, and Gnumeric's ssconvert re-saves it untouched.

    python tests/make_client_files.py       # rewrite tests/files/clients/*.xlsx and its README.md

It needs soffice, ssconvert and a Python with LibreOffice's UNO bridge (Debian's python3-uno, for the
system /usr/bin/python3; DAPLAN_UNO_PYTHON names another). The tests make the same files afresh with these
functions wherever the apps are installed, and check them exactly as they check the committed copies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from conftest import FILES, fixed_clock, make_plan

from daplan_xlsx.model import Plan
from daplan_xlsx.writer import write_workbook

HERE = Path(__file__).resolve().parent
LO_EDIT = HERE / "lo_edit.py"
CLIENTS = FILES / "clients"

ISSUE_ID = "00000000-0000-4000-8000-0000000000c7"
LG = "Leadership and Governance"
IC = "Initial Contact"

# The recipient's edits. Issued, "Leadership and Governance" holds LG-1 (row 6, Complete), LG-2 (7, On
# track), LG-L1 (8, Not started) and LG-L2 (9, Not started); "Initial Contact" holds IC-1 (row 6).
RESPONSE = (
    "Named lead: Det Supt Zoë Ångström, appointed 1 May 2015.\n"
    "Reviewed at the Força board – «quarterly» – with €0 spent.\n"
    "\n"
    "Next: café drop-ins; leaflets in Polish (Łódź), Urdu (اردو) and Chinese (家庭暴力) ✓ 📋"
)
TYPED_DUE = "31/03/2016"  # typed in a UK locale: 31 March 2016
NEW_ROW = {
    "action": "Audit a sample of domestic abuse calls every quarter.",
    "response": "Proposed by the Area Commanders.",
    "lead": "Area Commanders",
    "status": "Not started",
}
EDITS: list[dict[str, Any]] = [
    # Rewrite LG-1's response: several lines, one blank, non-ASCII (Ctrl+Enter between lines in Calc).
    {"op": "set_text", "sheet": LG, "cell": "D6", "text": RESPONSE},
    # Delete LG-L1's row: LG-L2 moves up to row 8.
    {"op": "delete_row", "sheet": LG, "row": 8},
    # Sort the table by Status, Z to A: LG-2 (On track) row 6, LG-L2 (Not started) 7, LG-1 (Complete) 8.
    {"op": "sort", "sheet": LG, "range": "A6:L8", "by_column": 7, "descending": True},
    # Insert a row above LG-1 (which moves to row 9) and type a new action into it, with no ID.
    {"op": "insert_row", "sheet": LG, "row": 8},
    {"op": "set", "sheet": LG, "cell": "C8", "text": NEW_ROW["action"]},
    {"op": "set", "sheet": LG, "cell": "D8", "text": NEW_ROW["response"]},
    {"op": "set", "sheet": LG, "cell": "G8", "text": NEW_ROW["lead"]},
    {"op": "set", "sheet": LG, "cell": "H8", "text": NEW_ROW["status"]},
    # Set IC-1's status and type a date into its empty Due cell.
    {"op": "set", "sheet": IC, "cell": "H6", "text": "At risk"},
    {"op": "set", "sheet": IC, "cell": "F6", "text": TYPED_DUE},
]

# The committed files, in the order the README lists them.
EDITED = "libreoffice-edited.xlsx"
LO_RESAVED = "libreoffice-resaved.xlsx"
GNUMERIC_RESAVED = "gnumeric-resaved.xlsx"
CLIENT_FILES = (EDITED, LO_RESAVED, GNUMERIC_RESAVED)
GNUMERIC_EXPORT = "Gnumeric_Excel:xlsx2"  # "MS Excel 2010" xlsx, the newer of Gnumeric's two


def client_plan() -> Plan:
    return make_plan(n_local=2)


def issue(path: Path) -> Path:
    """The workbook the recipient receives: the whole client plan, fixed clock, fixed issue id."""
    write_workbook(client_plan(), path, clock=fixed_clock, issue_id=ISSUE_ID)
    return path


def uno_python() -> str:
    """The interpreter with LibreOffice's UNO bridge (not the project's Python)."""
    return os.environ.get("DAPLAN_UNO_PYTHON", "/usr/bin/python3")


def has_uno() -> bool:
    python = shutil.which(uno_python())
    if python is None:
        return False
    probe = subprocess.run([python, "-c", "import uno"], capture_output=True, check=False, timeout=60)
    return probe.returncode == 0


def libreoffice(src: Path, out: Path, edits: list[dict[str, Any]]) -> dict[str, Any]:
    """Open `src` in a headless LibreOffice Calc, make `edits`, save as xlsx to `out`; lo_edit's report."""
    done = subprocess.run(
        [uno_python(), str(LO_EDIT), str(src), str(out), "-"],
        input=json.dumps(edits),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0 or not out.is_file():
        raise RuntimeError(f"lo_edit.py failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def gnumeric(src: Path, out: Path) -> str:
    """Re-save `src` with Gnumeric's ssconvert; its version."""
    ssconvert = shutil.which("ssconvert") or "ssconvert"
    subprocess.run(
        [ssconvert, f"--export-type={GNUMERIC_EXPORT}", str(src), str(out)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    if not out.is_file():
        raise RuntimeError(f"ssconvert wrote no {out.name}")
    version = subprocess.run([ssconvert, "--version"], capture_output=True, text=True, check=True).stdout
    # "ssconvert version '1.12.55'"
    return version.split("'")[1] if "'" in version else version.strip()


def make(outdir: Path) -> dict[str, str]:
    """Issue the workbook and make every client file in `outdir`; file name -> how it was made."""
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="daplan-clients-") as tmp:
        issued = issue(Path(tmp) / "issued.xlsx")
        edited = libreoffice(issued, outdir / EDITED, EDITS)
        resaved = libreoffice(issued, outdir / LO_RESAVED, [])
        gnumeric_version = gnumeric(issued, outdir / GNUMERIC_RESAVED)
    lo = f"LibreOffice {edited['version']} headless, locale {edited['locale']}"
    return {
        EDITED: f"`python3 tests/lo_edit.py issued.xlsx {EDITED} -` with `EDITS` on stdin; {lo}",
        LO_RESAVED: f"`python3 tests/lo_edit.py issued.xlsx {LO_RESAVED} '[]'` (no edits); "
        f"LibreOffice {resaved['version']} headless, locale {resaved['locale']}",
        GNUMERIC_RESAVED: f"`ssconvert --export-type={GNUMERIC_EXPORT} issued.xlsx {GNUMERIC_RESAVED}`; "
        f"Gnumeric {gnumeric_version}",
    }


README = """\
# Returns saved by the recipients' real apps

Each file is a workbook issued by `issue()` in `tests/make_client_files.py` and then saved by a real
app. `issue()` writes `make_plan(n_local=2)` with `fixed_clock` and the issue id
`{issue_id}`, so the tests rebuild the same workbook and its metadata anywhere.
`tests/test_real_clients.py` diffs these committed copies on every run, so the suite checks them where the
apps are absent; where the apps are installed (always in CI) it makes each file again in a temporary folder
and checks the fresh one the same way.

{lines}

`python3` is the system interpreter with Debian's `python3-uno`; `EDITS` is the list in
`tests/make_client_files.py` (set a status, rewrite a response with several lines and non-ASCII text,
type a date into Due, sort a sheet by Status, insert a row and type a new action into it, delete a row).

To make them again (needs `soffice`, `ssconvert` and `python3-uno`), from the project root:

```sh
python tests/make_client_files.py
```

It rewrites the three files and this README (with the apps' versions). Then run
`python -m pytest -q tests/test_real_clients.py`.
"""


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="daplan-clients-out-") as tmp:
        made = make(Path(tmp))
        CLIENTS.mkdir(parents=True, exist_ok=True)
        for name in made:
            shutil.copyfile(Path(tmp) / name, CLIENTS / name)
    lines = "\n".join(f"- `{name}`: {how}." for name, how in made.items())
    (CLIENTS / "README.md").write_text(README.format(issue_id=ISSUE_ID, lines=lines), encoding="utf-8")
    for name in made:
        print(CLIENTS / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
