"""`daplan --help` starts fast: the command line imports no heavy library before a command needs it."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pydantic", "yaml", "xlsxwriter", "openpyxl", "python_calamine", "defusedxml")


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from daplan_xlsx.cli import cli\n"
        "try:\n"
        "    cli.main(['--help'], prog_name='daplan')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "Usage: daplan" in out
    assert out.strip().splitlines()[-1] == "loaded:"


def test_public_names_resolve_on_first_use() -> None:
    import daplan_xlsx

    for name in daplan_xlsx.__all__:
        assert getattr(daplan_xlsx, name) is not None
