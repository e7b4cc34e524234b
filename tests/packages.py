"""Editing workbook packages in tests: copying one part by part, finding a sheet's part."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import defusedxml.ElementTree

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def rezip(
    src: Path, dst: Path, edit: Callable[[str, bytes], bytes | None], extra: dict[str, bytes] | None = None
) -> Path:
    """Copy a zip member by member through `edit` (None drops a member), adding `extra` members at the end."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


def sheet_part(path: Path, sheet: str) -> str:
    """The zip member holding a sheet's XML, found through the workbook's relationships."""
    with zipfile.ZipFile(path) as zf:
        wb = defusedxml.ElementTree.fromstring(zf.read("xl/workbook.xml"))
        rels = defusedxml.ElementTree.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    rid = next(s.get(_REL_ID) for s in wb.iter(f"{{{MAIN_NS}}}sheet") if s.get("name") == sheet)
    target = next(r.get("Target", "") for r in rels if r.get("Id") == rid)
    return target.lstrip("/") if target.startswith("/") else "xl/" + target
