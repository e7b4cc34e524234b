"""What a returned file really is, and whether it is safe to open, decided before any spreadsheet parser runs.

Recipients send back whatever their app saved: encrypted workbooks, legacy .xls, ODS or CSV renamed .xlsx,
truncated attachments. Each gets a message that says what it is and what to do. Zip and XML bombs are refused
from the declared sizes and the first bytes of each part, before anything is inflated past the limits below.
"""

from __future__ import annotations

import bisect
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from .errors import ReturnUnreadable

# Documented limits for a returned workbook (see README, "Reading returns").
MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_MEMBERS = 10_000
MAX_TOTAL_UNCOMPRESSED = 1024 * 1024 * 1024
MAX_MEMBER_RATIO = 100  # inflated / compressed, for parts over RATIO_FLOOR bytes
RATIO_FLOOR = 4 * 1024 * 1024

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
STRICT_NS = "http://purl.oclc.org/ooxml/spreadsheetml/main"
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass
class Container:
    """A zip that holds an Excel workbook, with what the reader needs to know about it."""

    path: Path
    epoch1904: bool = False
    macro_enabled: bool = False
    # sheet name -> zip member of its XML
    sheet_parts: dict[str, str] = field(default_factory=dict)


def _refuse(what: str, path: Path, hint: str = ReturnUnreadable.hint) -> ReturnUnreadable:
    return ReturnUnreadable(what, file=path, hint=hint)


def _sniff_not_zip(path: Path, head: bytes) -> ReturnUnreadable:
    if head.startswith(OLE_MAGIC):
        data = path.read_bytes()
        if _ENCRYPTED_STREAM in data:
            return _refuse(
                "the workbook is protected with a password (encrypted)",
                path,
                "open it, remove the password (File > Info > Protect Workbook), and save again",
            )
        return _refuse(
            "this is a legacy Excel 97-2003 file (.xls), not .xlsx",
            path,
            "open it and save as Excel Workbook (.xlsx)",
        )
    if head.startswith(b"{\\rtf"):
        return _refuse("this is an RTF document, not a workbook", path)
    if head.startswith(b"%PDF"):
        return _refuse(
            "this is a PDF, not a workbook", path, "send the .xlsx that was issued, not a printout"
        )
    try:
        sample = head.decode("utf-8")
    except UnicodeDecodeError:
        sample = ""
    if sample and ("," in sample or ";" in sample or "\t" in sample) and "\x00" not in sample:
        return _refuse(
            "this is a text (CSV) file, not an Excel workbook",
            path,
            "open the workbook that was issued and save it as Excel Workbook (.xlsx)",
        )
    return _refuse("this is not a valid .xlsx file (not a zip package)", path)


def open_container(path: Path) -> Container:
    """Check a returned file from the outside in; raise ReturnUnreadable with what to do."""
    if not path.exists():
        raise _refuse("file not found", path, "check the path")
    if path.is_dir():
        raise _refuse("this is a directory, not a workbook", path, "name an .xlsx file")
    size = path.stat().st_size
    if size == 0:
        raise _refuse("the file is empty", path)
    if size > MAX_FILE_BYTES:
        raise _refuse(
            f"the file is {size // 1048576} MiB; a return is at most {MAX_FILE_BYTES // 1048576} MiB", path
        )
    with path.open("rb") as fh:
        head = fh.read(4096)
    if not head.startswith(b"PK"):
        raise _sniff_not_zip(path, head)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _refuse(f"the zip package is damaged or truncated ({exc})", path) from exc
    with zf:
        return _check_package(path, zf)


def _check_package(path: Path, zf: zipfile.ZipFile) -> Container:
    infos = zf.infolist()
    names = {i.filename for i in infos}
    if len(infos) > MAX_MEMBERS:
        raise _refuse(
            f"the package has {len(infos)} parts; at most {MAX_MEMBERS} are read (a zip bomb?)", path
        )
    total = sum(i.file_size for i in infos)
    if total > MAX_TOTAL_UNCOMPRESSED:
        raise _refuse(
            f"the package would inflate to {total // 1048576} MiB; at most "
            f"{MAX_TOTAL_UNCOMPRESSED // 1048576} MiB is read (a zip bomb?)",
            path,
        )
    for info in infos:
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_MEMBER_RATIO * max(info.compress_size, 1):
            raise _refuse(
                f"part {info.filename} inflates {info.file_size // max(info.compress_size, 1)}-fold; "
                f"more than {MAX_MEMBER_RATIO}-fold is refused (a zip bomb?)",
                path,
            )
    if "mimetype" in names:
        kind = zf.read("mimetype")[:100].decode("ascii", "replace")
        if "opendocument" in kind:
            raise _refuse(
                "this is an OpenDocument spreadsheet (.ods) renamed .xlsx",
                path,
                "in LibreOffice use File > Save As and choose Excel 2007-365 (.xlsx)",
            )
    if any(n.startswith("Index/") and n.endswith(".iwa") for n in names):
        raise _refuse(
            "this is an Apple Numbers file", path, "in Numbers use File > Export To > Excel (.xlsx)"
        )
    if "word/document.xml" in names:
        raise _refuse("this is a Word document (.docx), not a workbook", path)
    if "ppt/presentation.xml" in names:
        raise _refuse("this is a PowerPoint file, not a workbook", path)
    try:
        for info in infos:
            if info.filename.endswith((".xml", ".rels")):
                with zf.open(info) as member:
                    # OOXML never declares a DTD; one here can only be an entity-expansion attack.
                    if _declares_dtd(member):
                        raise _refuse(
                            f"part {info.filename} declares XML entities (an entity-expansion bomb?)", path
                        )
        container = Container(path, macro_enabled="xl/vbaProject.bin" in names)
        _read_workbook_part(path, zf, names, container)
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise _refuse(f"the zip package is damaged or truncated ({exc})", path) from exc
    return container


_PROLOG_LIMIT = 1024 * 1024
_ROOT_START = re.compile(rb"<[A-Za-z_]")
_PROLOG_JUNK = re.compile(rb"<\?.*?\?>|<!--.*?-->|\s+", re.DOTALL)


def _declares_dtd(member: IO[bytes]) -> bool:
    """True when the part's prolog (everything before its root element) declares a DTD or entities."""
    head = b""
    while len(head) < _PROLOG_LIMIT:
        block = member.read(65536)
        head += block
        # Skip the declaration, comments and white space; what follows must be the root element.
        pos = 0
        while True:
            m = _PROLOG_JUNK.match(head, pos)
            if not m or m.end() == pos:
                break
            pos = m.end()
        if _DTD.match(head, pos):
            return True
        if _ROOT_START.match(head, pos) or not block:
            return False
    return True  # a prolog over 1 MiB is not an Excel file's


def _workbook_part(zf: zipfile.ZipFile, names: set[str]) -> str:
    rels = "_rels/.rels"
    if rels in names:
        root = SafeET.fromstring(zf.read(rels))
        for rel in root:
            if rel.get("Type", "").endswith("/officeDocument"):
                return rel.get("Target", "").lstrip("/")
    return "xl/workbook.xml"


def _read_workbook_part(path: Path, zf: zipfile.ZipFile, names: set[str], container: Container) -> None:
    try:
        part = _workbook_part(zf, names)
        if part not in names:
            raise _refuse("the package holds no workbook (is this an .xlsx?)", path)
        root = SafeET.fromstring(zf.read(part))
    except DefusedXmlException as exc:
        raise _refuse(f"the workbook XML is unsafe to parse ({type(exc).__name__})", path) from exc
    except SafeET.ParseError as exc:
        raise _refuse(f"the workbook XML is damaged ({exc})", path) from exc
    if root.tag.startswith("{" + STRICT_NS):
        raise _refuse(
            "the workbook is saved as 'Strict Open XML'",
            path,
            "open it and save as Excel Workbook (.xlsx), not Strict Open XML",
        )
    pr = root.find(f"{{{MAIN_NS}}}workbookPr")
    if pr is not None and pr.get("date1904", "0").lower() in ("1", "true"):
        container.epoch1904 = True
    base = part.rsplit("/", 1)[0] + "/" if "/" in part else ""
    rels_name = f"{base}_rels/{part.rsplit('/', 1)[-1]}.rels"
    targets: dict[str, str] = {}
    if rels_name in names:
        for rel in SafeET.fromstring(zf.read(rels_name)):
            target = rel.get("Target", "")
            targets[rel.get("Id", "")] = target.lstrip("/") if target.startswith("/") else base + target
    sheets = root.find(f"{{{MAIN_NS}}}sheets")
    for sheet in list(sheets) if sheets is not None else []:
        rid = sheet.get(f"{{{REL_NS}}}id", "")
        if rid in targets:
            container.sheet_parts[sheet.get("name", "")] = targets[rid]


_FORMULA = re.compile(rb"<(?:\w+:)?f(?:\s[^>]*)?(?:/>|>(.*?)</(?:\w+:)?f>)", re.DOTALL)
_CELL_START = re.compile(rb"<(?:\w+:)?c\s[^>]*?\br=\"([A-Z]+[0-9]+)\"")
# A cell holding something past the limits below: six-digit rows (100,000 and more) or columns past GZ.
# Styled empty cells (`<c r=".." s="1"/>`, which LibreOffice leaves down to row 1,048,576) hold nothing and
# cost the parser nothing, so only cells with content count.
_WITH_CONTENT = rb"\"[^>]*?(?<!/)>(?!</(?:\w+:)?c>)"
_FAR_ROW = re.compile(rb"<(?:\w+:)?c\s[^>]*?\br=\"[A-Z]{1,3}[1-9][0-9]{5,}" + _WITH_CONTENT)
_FAR_COLUMN = re.compile(rb"<(?:\w+:)?c\s[^>]*?\br=\"((?:[A-Z]{3}|[H-Z][A-Z])[0-9]+)" + _WITH_CONTENT)
MAX_SHEET_ROWS = 100_000
MAX_SHEET_COLUMN = "GZ"  # 208 columns
MAX_SHEET_PART = 512 * 1024 * 1024


def scan_sheet(path: Path, part: str, sheet: str) -> dict[str, str]:
    """Check a sheet's extent before it is parsed, and find its formulas: cell reference -> formula text.

    The spreadsheet parser allocates the whole rectangle up to the farthest cell, so one stray cell at
    XFD60000 would cost gigabytes: the references are checked here first, in the XML itself. The fast
    parser returns cached values only, so formulas are found here too: a cached value must never pass for
    something the recipient typed.
    """
    with zipfile.ZipFile(path) as zf:
        if zf.getinfo(part).file_size > MAX_SHEET_PART:
            raise _refuse(
                "the sheet is too large to be a return",
                path,
                hint="delete the rows below the table and save again",
            )
        data = zf.read(part)
    if _FAR_ROW.search(data):
        raise ReturnUnreadable(
            f"the sheet has cells at row {MAX_SHEET_ROWS:,} or below; a return is read up to that row",
            file=path,
            sheet=sheet,
            hint="delete the rows below the table and save again",
        )
    far = _FAR_COLUMN.search(data)
    if far:
        raise ReturnUnreadable(
            f"the sheet has cells beyond column {MAX_SHEET_COLUMN} ({far.group(1).decode()})",
            file=path,
            sheet=sheet,
            hint="delete the columns to the right of the table and save again",
        )
    matches = list(_FORMULA.finditer(data))
    if not matches:
        return {}
    cells = [(m.start(), m.group(1).decode()) for m in _CELL_START.finditer(data)]
    starts = [pos for pos, _ in cells]
    found: dict[str, str] = {}
    for m in matches:
        i = bisect.bisect_right(starts, m.start()) - 1
        if i >= 0:
            body = (m.group(1) or b"").decode("utf-8", "replace")
            found[cells[i][1]] = "=" + _unescape(body) if body else "(shared formula)"
    return found


def _unescape(s: str) -> str:
    return (
        s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&apos;", "'")
        .replace("&amp;", "&")
    )
