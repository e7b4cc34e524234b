#!/usr/bin/python3
"""Edit an .xlsx the way a recipient does in LibreOffice Calc, driven headless through UNO.

Run it with the system interpreter that has Debian's python3-uno (not the project's Python):

    /usr/bin/python3 tests/lo_edit.py IN.xlsx OUT.xlsx '[{"op": "set", "sheet": "S", "cell": "H6", "text": "Complete"}]'
    /usr/bin/python3 tests/lo_edit.py IN.xlsx OUT.xlsx - < edits.json

It starts `soffice --headless --invisible --norestore --accept=socket,host=127.0.0.1,port=PORT;urp;` with a
profile folder of its own (--profile, or a temporary one), connects over UNO (retrying for up to 60 s), loads
IN, removes sheet protection from each sheet it edits, applies the edits in order, stores the document with
the filter "Calc MS Excel 2007 XML" to OUT, closes it, and always terminates soffice. It prints a JSON
report on stdout: the LibreOffice version, the locale in force, and for every "set" what the cell now holds
(value type, number, text, number format), so a caller can check how LibreOffice interpreted the input.

Edits (rows are 1-based, as Calc shows them; "sheet" is a sheet name):
  {"op": "set", "sheet": S, "cell": "H6", "text": "Complete"}
      typed input: the cell's FormulaLocal property, which LibreOffice parses exactly like text typed into
      the cell (a date, a number, a formula or text, according to the cell's number format and the locale).
      Not cell.setFormula(text): that parses with the API's en-US grammar whatever the locale, so a typed
      "31/03/2016" would stay text (and the cell would be given the text format).
  {"op": "set_text", "sheet": S, "cell": "D6", "text": "line 1\\nline 2"}
      literal text: cell.setString(text); "\\n" is a line break inside the cell (Ctrl+Enter in Calc).
  {"op": "sort", "sheet": S, "range": "A6:L8", "by_column": 7, "descending": false}
      sorts the range (data rows only, no header) by its column by_column (0-based within the range) with
      XSortable.createSortDescriptor / sort, like Data > Sort.
  {"op": "insert_row", "sheet": S, "row": N}   inserts an empty row so the new row is row N
  {"op": "delete_row", "sheet": S, "row": N}   deletes row N

Dates: "31/03/2016" is day-first only in a UK locale, and LibreOffice parses typed input with the locale of
the office (Tools > Options > Language Settings > Languages > Locale setting). This script therefore seeds the
profile with the locale en-GB (ooSetupSystemLocale and ooLocale in registrymodifications.xcu) before soffice
starts, so typed dates are read as a UK user types them; --locale changes it. The report shows whether the
typed text became a date serial (type VALUE) or stayed text.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uno
from com.sun.star.beans import PropertyValue
from com.sun.star.connection import NoConnectException

FILTER = "Calc MS Excel 2007 XML"
CONNECT_TIMEOUT = 60.0
_XCU = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Setup/L10N"><prop oor:name="ooSetupSystemLocale" oor:op="fuse">\
<value>{locale}</value></prop></item>
<item oor:path="/org.openoffice.Setup/L10N"><prop oor:name="ooLocale" oor:op="fuse">\
<value>{locale}</value></prop></item>
<item oor:path="/org.openoffice.Office.Linguistic/General"><prop oor:name="DefaultLocale" oor:op="fuse">\
<value>{locale}</value></prop></item>
</oor:items>
"""
# com.sun.star.table.CellContentType
_CONTENT_TYPES = {"EMPTY": "EMPTY", "VALUE": "VALUE", "TEXT": "TEXT", "FORMULA": "FORMULA"}


def prop(name: str, value: Any) -> Any:
    p = PropertyValue()
    p.Name = name
    p.Value = value
    return p


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_profile(profile: Path, locale: str) -> None:
    user = profile / "user"
    user.mkdir(parents=True, exist_ok=True)
    xcu = user / "registrymodifications.xcu"
    if not xcu.exists():
        xcu.write_text(_XCU.format(locale=locale), encoding="utf-8")


def start_soffice(soffice: str, profile: Path, port: int) -> subprocess.Popen[bytes]:
    args = [
        soffice,
        f"-env:UserInstallation={profile.resolve().as_uri()}",
        "--headless",
        "--invisible",
        "--norestore",
        "--nologo",
        "--nodefault",
        "--nolockcheck",
        f"--accept=socket,host=127.0.0.1,port={port};urp;",
    ]
    # A process group of its own, so the whole soffice tree can be ended if it does not quit.
    return subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def connect(port: int, proc: subprocess.Popen[bytes]) -> Any:
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    url = f"uno:socket,host=127.0.0.1,port={port};urp;StarOffice.ComponentContext"
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:
        try:
            return resolver.resolve(url)
        except NoConnectException:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"soffice exited with code {proc.returncode} before accepting a connection"
                ) from None
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"no UNO connection to soffice on port {port} after {CONNECT_TIMEOUT:.0f} s"
                ) from None
            time.sleep(0.25)


def stop_soffice(proc: subprocess.Popen[bytes], desktop: Any) -> None:
    if desktop is not None:
        # terminate() ends the office; the bridge then goes away, which raises here: that is expected.
        with contextlib.suppress(Exception):
            desktop.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def config_value(ctx: Any, path: str, name: str) -> str:
    provider = ctx.ServiceManager.createInstanceWithContext(
        "com.sun.star.configuration.ConfigurationProvider", ctx
    )
    access = provider.createInstanceWithArguments(
        "com.sun.star.configuration.ConfigurationAccess", (prop("nodepath", path),)
    )
    return str(access.getByName(name))


def _sheet(doc: Any, name: str, unprotected: set[str]) -> Any:
    sheets = doc.getSheets()
    if not sheets.hasByName(name):
        raise SystemExit(f"lo_edit: no sheet named {name!r} (sheets: {list(sheets.getElementNames())})")
    sheet = sheets.getByName(name)
    if name not in unprotected:
        # The workbooks are protected without a password, as a guide; a recipient can lift it in one click.
        if sheet.isProtected():
            sheet.unprotect("")
        unprotected.add(name)
    return sheet


def describe(doc: Any, cell: Any) -> dict[str, Any]:
    kind = cell.getType().value
    fmt = doc.getNumberFormats().getByKey(cell.getPropertyValue("NumberFormat"))
    return {
        "type": _CONTENT_TYPES.get(kind, kind),
        "value": cell.getValue(),
        "string": cell.getString(),
        "formula": cell.getFormula(),
        "format": fmt.getPropertyValue("FormatString"),
    }


def sort_range(sheet: Any, ref: str, by_column: int, descending: bool) -> None:
    rng = sheet.getCellRangeByName(ref)
    field = uno.createUnoStruct("com.sun.star.table.TableSortField")
    field.Field = by_column
    field.IsAscending = not descending
    field.IsCaseSensitive = False
    descriptor = list(rng.createSortDescriptor())
    wanted = {
        "SortFields": uno.Any("[]com.sun.star.table.TableSortField", (field,)),
        "ContainsHeader": False,
        "IsSortColumns": False,
    }
    for i, p in enumerate(descriptor):
        if p.Name in wanted:
            descriptor[i] = prop(p.Name, wanted.pop(p.Name))
    descriptor += [prop(name, value) for name, value in wanted.items()]
    uno.invoke(rng, "sort", (tuple(descriptor),))


def apply_edits(doc: Any, edits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    unprotected: set[str] = set()
    report = []
    for edit in edits:
        op = edit.get("op")
        sheet = _sheet(doc, edit["sheet"], unprotected)
        if op in ("set", "set_text"):
            cell = sheet.getCellRangeByName(edit["cell"])
            if op == "set":
                # FormulaLocal, not setFormula: only it parses with the office locale, as typing does.
                cell.setPropertyValue("FormulaLocal", edit["text"])
            else:
                cell.setString(edit["text"])
            report.append({"op": op, "sheet": edit["sheet"], "cell": edit["cell"], **describe(doc, cell)})
        elif op == "sort":
            sort_range(sheet, edit["range"], int(edit["by_column"]), bool(edit.get("descending", False)))
            report.append({"op": op, "sheet": edit["sheet"], "range": edit["range"]})
        elif op == "insert_row":
            sheet.getRows().insertByIndex(int(edit["row"]) - 1, 1)
            report.append({"op": op, "sheet": edit["sheet"], "row": edit["row"]})
        elif op == "delete_row":
            sheet.getRows().removeByIndex(int(edit["row"]) - 1, 1)
            report.append({"op": op, "sheet": edit["sheet"], "row": edit["row"]})
        else:
            raise SystemExit(f"lo_edit: unknown op {op!r} in {edit!r}")
    return report


def run(args: argparse.Namespace, edits: list[dict[str, Any]]) -> dict[str, Any]:
    src, out = Path(args.input).resolve(), Path(args.output).resolve()
    if not src.is_file():
        raise SystemExit(f"lo_edit: {src} does not exist")
    temp_profile = None
    if args.profile:
        profile = Path(args.profile)
    else:
        temp_profile = tempfile.mkdtemp(prefix="lo_edit-profile-")
        profile = Path(temp_profile)
    seed_profile(profile, args.locale)
    port = args.port or free_port()
    proc = start_soffice(args.soffice, profile, port)
    desktop = None
    try:
        ctx = connect(port, proc)
        desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        doc = desktop.loadComponentFromURL(src.as_uri(), "_blank", 0, (prop("Hidden", True),))
        if doc is None:
            raise RuntimeError(f"LibreOffice could not load {src}")
        try:
            report = apply_edits(doc, edits)
            doc.storeToURL(out.as_uri(), (prop("FilterName", FILTER), prop("Overwrite", True)))
        finally:
            doc.close(True)
        return {
            "version": config_value(ctx, "/org.openoffice.Setup/Product", "ooSetupVersionAboutBox"),
            "locale": config_value(ctx, "/org.openoffice.Setup/L10N", "ooSetupSystemLocale"),
            "edits": report,
        }
    finally:
        stop_soffice(proc, desktop)
        if temp_profile:
            shutil.rmtree(temp_profile, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("input", help="the .xlsx to load")
    parser.add_argument("output", help="where to store the edited .xlsx")
    parser.add_argument(
        "edits", nargs="?", default="-", help="a JSON list of edits, or - to read it from stdin"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port for soffice to accept on (default: a free one)"
    )
    parser.add_argument("--profile", help="LibreOffice profile folder (default: a temporary one)")
    parser.add_argument("--soffice", default=shutil.which("soffice") or "soffice", help="the soffice to run")
    parser.add_argument(
        "--locale", default="en-GB", help="office locale for parsing typed input (default en-GB)"
    )
    args = parser.parse_args(argv)
    edits = json.loads(sys.stdin.read() if args.edits == "-" else args.edits)
    if not isinstance(edits, list):
        raise SystemExit("lo_edit: the edits must be a JSON list")
    report = run(args, edits)
    json.dump(report, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
