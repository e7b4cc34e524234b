"""What a returned file really is, and whether it is safe to open, decided before any spreadsheet parser runs.

Recipients send back whatever their app saved: encrypted workbooks, legacy .xls, ODS or CSV renamed .xlsx,
truncated attachments. Each gets a message that says what it is and what to do. Zip and XML bombs are refused
from the declared sizes and the first bytes of each part that is parsed, before anything is inflated past the
limits below.

The file is read once: its hash, these checks and the spreadsheet parser all see the same bytes, and each
sheet read is inflated once, for its scan, then handed to the parser uncompressed.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import re
import stat
import struct
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path

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
class ReturnFile:
    """A returned file's bytes, read once: its checks, its hash and the spreadsheet parser all see them."""

    path: Path
    data: bytes = field(repr=False)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class Package:
    """A zip package held in memory, whose parts are inflated straight from its bytes.

    zipfile's set-up for each part cost more than inflating a small part. Inflation stays bounded by the
    size the directory declares (checked against the limits first) and the CRC is checked; anything unusual
    (encryption, another compression method, a damaged header, a size or CRC that does not match) goes to
    zipfile's own reader, for its checks and its error.
    """

    def __init__(self, zf: zipfile.ZipFile, data: bytes | None = None) -> None:
        self.zf = zf
        self.data = data

    def read(self, name: str | zipfile.ZipInfo) -> bytes:
        """A part, whole. Raises KeyError when there is no such part, zipfile's errors when it is damaged."""
        info = name if isinstance(name, zipfile.ZipInfo) else self.zf.getinfo(name)
        raw = self._raw(info)
        if raw is not None:
            out = self._inflate(info, raw, info.file_size + 1)
            if out is not None and len(out) == info.file_size and zlib.crc32(out) == info.CRC:
                return out
        return self.zf.read(info)

    def head(self, name: str | zipfile.ZipInfo, size: int) -> bytes:
        """The first `size` bytes of a part (fewer when it is shorter), inflating no more than that."""
        info = name if isinstance(name, zipfile.ZipInfo) else self.zf.getinfo(name)
        raw = self._raw(info)
        if raw is not None:
            out = self._inflate(info, raw, size)
            if out is not None:
                return out[:size]
        with self.zf.open(info) as member:
            return member.read(size)

    def _raw(self, info: zipfile.ZipInfo) -> memoryview | None:
        if self.data is None or info.flag_bits & 0x1 or info.compress_type not in _INFLATABLE:
            return None
        offset = info.header_offset
        local = self.data[offset : offset + 30]
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            return None
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        start = offset + 30 + name_len + extra_len
        if start + info.compress_size > len(self.data):
            return None
        return memoryview(self.data)[start : start + info.compress_size]

    @staticmethod
    def _inflate(info: zipfile.ZipInfo, raw: memoryview, limit: int) -> bytes | None:
        if info.compress_type == zipfile.ZIP_STORED:
            return bytes(raw[:limit])
        try:
            return zlib.decompressobj(-15).decompress(raw, limit)
        except zlib.error:
            return None


_INFLATABLE = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
# Sheets inflated ahead are handed to the parser stored only up to this much XML; past it the parser gets
# the file as it is (and inflates them again) rather than hold a second, uncompressed copy.
MAX_REPACKED = 64 * 1024 * 1024
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_UTF8_NAMES = 0x800
_DOS_DATE = 0x21  # 1 January 1980


def _repack(package: Package, inflated: dict[str, bytes]) -> bytes | None:
    """The package with the given parts stored uncompressed and every other part copied byte for byte.

    None when a part cannot be copied so (encrypted, an unusual compression, a zip64 size): the parser then
    reads the file as it is.
    """
    chunks: list[bytes | memoryview] = []
    central: list[bytes] = []
    offset = 0
    for info in package.zf.infolist():
        name = info.filename.encode("utf-8")
        data = inflated.get(info.filename)
        body: bytes | memoryview
        if data is not None:
            method, body, size = zipfile.ZIP_STORED, data, len(data)
        else:
            raw = package._raw(info)
            if raw is None:
                return None
            method, body, size = info.compress_type, raw, info.file_size
        if max(size, len(body), offset) >= 0xFFFFFFFF:
            return None
        head = _LOCAL.pack(
            0x04034B50, 20, _UTF8_NAMES, method, 0, _DOS_DATE, info.CRC, len(body), size, len(name), 0
        )
        central.append(
            _CENTRAL.pack(
                0x02014B50,
                20,
                20,
                _UTF8_NAMES,
                method,
                0,
                _DOS_DATE,
                info.CRC,
                len(body),
                size,
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name
        )
        chunks += (head, name, body)
        offset += len(head) + len(name) + len(body)
    directory = b"".join(central)
    chunks += (directory, _END.pack(0x06054B50, 0, 0, len(central), len(central), len(directory), offset, 0))
    return b"".join(chunks)


@dataclass
class Container:
    """A zip that holds an Excel workbook, with what the reader needs to know about it."""

    path: Path
    epoch1904: bool = False
    macro_enabled: bool = False
    # sheet name -> zip member of its XML
    sheet_parts: dict[str, str] = field(default_factory=dict)
    file: ReturnFile | None = field(default=None, repr=False)
    # The package, opened once and kept for the sheet scans (it is in memory: nothing to close).
    package: Package | None = field(default=None, repr=False)
    # sheet part -> its formulas, for the sheets scanned ahead of parsing (`scan_sheets`)
    scanned: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    _repacked: bytes | None = field(default=None, repr=False)

    @property
    def sha256(self) -> str:
        return self.file.sha256 if self.file is not None else ""

    def scan_sheets(self, names: Iterable[str]) -> None:
        """Scan these sheets (see `scan_sheet`) before the spreadsheet parser opens the package.

        The parser is then given the package with these sheets stored as inflated here: each sheet's XML is
        inflated once, not once for the scan and again by the parser.
        """
        if self.package is None:
            return
        inflated: dict[str, bytes] = {}
        size = 0
        for name in names:
            part = self.sheet_parts.get(name)
            if part is None or part in self.scanned:
                continue
            try:
                data = _sheet_xml(self.path, self.package, part)
            except (zipfile.BadZipFile, EOFError, OSError, KeyError, zlib.error) as exc:
                raise _refuse(f"the zip package is damaged or truncated ({exc})", self.path) from exc
            self.scanned[part] = _scan_xml(self.path, data, part, name)
            size += len(data)
            if size <= MAX_REPACKED:
                inflated[part] = data
        if inflated and size <= MAX_REPACKED:
            self._repacked = _repack(self.package, inflated)

    def parser_bytes(self) -> bytes | None:
        """The package for the spreadsheet parser: the file's bytes, with the sheets scanned ahead stored."""
        if self._repacked is not None:
            return self._repacked
        return self.file.data if self.file is not None else None

    @cached_property
    def saved_by(self) -> str:
        """Who last saved the workbook, from its document properties ('' when it does not say)."""
        if self.package is None:
            return ""
        try:
            core = self.package.head("docProps/core.xml", 20000).decode("utf-8", "replace")
        except (KeyError, OSError, EOFError, zipfile.BadZipFile, ValueError):
            return ""
        m = re.search(r"<cp:lastModifiedBy>([^<]{1,100})</cp:lastModifiedBy>", core)
        # As the XML says it: entities and character references resolved (`&#11;` is a vertical tab), for
        # the reader to check like any other text of the return.
        return _xml_text(m.group(1)).strip() if m else ""


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


def read_file(path: Path) -> ReturnFile:
    """A returned file's bytes, after the checks that need only the file system."""
    try:
        status = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise _refuse("file not found", path, "check the path") from None
    if stat.S_ISDIR(status.st_mode):
        raise _refuse("this is a directory, not a workbook", path, "name an .xlsx file")
    size = status.st_size
    if size == 0:
        raise _refuse("the file is empty", path)
    if size > MAX_FILE_BYTES:
        raise _too_big(path, size)
    data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:  # it grew since
        raise _too_big(path, len(data))
    if not data:
        raise _refuse("the file is empty", path)
    return ReturnFile(path, data)


def _too_big(path: Path, size: int) -> ReturnUnreadable:
    return _refuse(
        f"the file is {size // 1048576} MiB; a return is at most {MAX_FILE_BYTES // 1048576} MiB", path
    )


def open_container(source: Path | ReturnFile) -> Container:
    """Check a returned file from the outside in; raise ReturnUnreadable with what to do."""
    file = source if isinstance(source, ReturnFile) else read_file(source)
    path = file.path
    if not file.data.startswith(b"PK"):
        raise _sniff_not_zip(path, file.data[:4096])
    try:
        zf = zipfile.ZipFile(io.BytesIO(file.data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise _refuse(f"the zip package is damaged or truncated ({exc})", path) from exc
    package = Package(zf, file.data)
    container = _check_package(path, package)
    container.file = file
    container.package = package
    return container


def _check_package(path: Path, package: Package) -> Container:
    zf = package.zf
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
        kind = package.head("mimetype", 100).decode("ascii", "replace")
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
        container = Container(path, macro_enabled="xl/vbaProject.bin" in names)
        parsed = _read_workbook_part(path, package, names, container)
        # Every other XML part's prolog is checked here, except the sheets' (`scan_sheet` checks a sheet's on
        # the XML it inflates anyway, before the sheet is parsed; a sheet never read is never parsed) and
        # those of the parts no XML parser reads.
        skip = parsed | set(container.sheet_parts.values())
        for info in infos:
            name = info.filename
            if (
                name.endswith((".xml", ".rels"))
                and name not in skip
                and not name.startswith(_NOT_PARSED)
                and _declares_dtd(partial(package.head, info))
            ):
                raise _dtd_refused(path, name)
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise _refuse(f"the zip package is damaged or truncated ({exc})", path) from exc
    return container


# Parts that no XML parser reads here: calamine reads the workbook part, its relationships, the shared
# strings, the styles and the sheets asked for; docProps/core.xml is only searched for who saved the file.
_NOT_PARSED = ("[Content_Types].xml", "docProps/", "xl/theme/")


def _dtd_refused(path: Path, part: str) -> ReturnUnreadable:
    # OOXML never declares a DTD; one here can only be an entity-expansion attack.
    return _refuse(f"part {part} declares XML entities (an entity-expansion bomb?)", path)


_PROLOG_LIMIT = 1024 * 1024
_ROOT_START = re.compile(rb"<[A-Za-z_]")
_PROLOG_JUNK = re.compile(rb"<\?.*?\?>|<!--.*?-->|\s+", re.DOTALL)


def _declares_dtd(prefix: Callable[[int], bytes]) -> bool:
    """True when the part's prolog (everything before its root element) declares a DTD or entities.

    `prefix(n)` gives the part's first n bytes: only as much as the prolog needs is inflated, which is the
    first few hundred bytes in any file Excel or LibreOffice wrote.
    """
    size = 512
    while True:
        raw = prefix(size)
        head = _ascii_compatible(raw)
        # Skip the declaration, comments and white space; what follows must be the root element.
        pos = 0
        while True:
            m = _PROLOG_JUNK.match(head, pos)
            if not m or m.end() == pos:
                break
            pos = m.end()
        if _DTD.match(head, pos):
            return True
        if _ROOT_START.match(head, pos) or len(raw) < size:
            return False
        if size >= _PROLOG_LIMIT:
            return True  # a prolog over 1 MiB is not an Excel file's
        size = min(size * 32, _PROLOG_LIMIT)


def _ascii_compatible(head: bytes) -> bytes:
    """A prolog's bytes as the patterns above read them: a UTF-16 part decoded, a byte-order mark dropped."""
    if head.startswith(b"\xef\xbb\xbf"):
        return head[3:]
    for start, skip, codec in (
        (b"\xff\xfe", 2, "utf-16-le"),
        (b"\xfe\xff", 2, "utf-16-be"),
        (b"<\x00", 0, "utf-16-le"),
        (b"\x00<", 0, "utf-16-be"),
    ):
        if head.startswith(start):
            return head[skip:].decode(codec, "ignore").encode()
    return head


class _Vetting:
    """A parser target that keeps nothing: defusedxml's parser only vets the document."""

    def close(self) -> None:
        return None


def _parse(path: Path, package: Package, part: str) -> ET.Element:
    """A workbook part's tree, once defusedxml's parser has read all of it without finding an entity.

    defusedxml's parser, without a target to build for, runs in expat alone; the tree is then built by the
    standard library's C parser from the same bytes: both together take two thirds of the time defusedxml
    takes to build the tree itself.
    """
    data = package.read(part)
    if _declares_dtd(lambda n: data[:n]):
        raise _dtd_refused(path, part)
    vet = SafeET.DefusedXMLParser(target=_Vetting())
    vet.parser.DefaultHandlerExpand = None  # no Python call per event: expat handles the text itself
    vet.feed(data)
    vet.close()
    return ET.fromstring(data)


WORKBOOK_PART = "xl/workbook.xml"


def _workbook_part(path: Path, package: Package, names: set[str], parsed: set[str]) -> str:
    rels = "_rels/.rels"
    if rels in names:
        parsed.add(rels)
        for rel in _parse(path, package, rels):
            if rel.get("Type", "").endswith("/officeDocument"):
                return rel.get("Target", "").lstrip("/")
    return WORKBOOK_PART


def _read_workbook_part(path: Path, package: Package, names: set[str], container: Container) -> set[str]:
    """Read the sheets' names and parts and the date system; the parts parsed (and checked) to find them."""
    parsed: set[str] = set()
    try:
        part = _workbook_part(path, package, names, parsed)
        if part not in names:
            raise _refuse("the package holds no workbook (is this an .xlsx?)", path)
        if part != WORKBOOK_PART:
            # The value parser always reads xl/workbook.xml: a package pointing elsewhere could have a
            # sheet parsed that these checks never saw. Every spreadsheet app writes it there.
            raise _refuse(
                f"the workbook part is at an unusual place ({part})",
                path,
                "open it in Excel or LibreOffice and save it again as Excel Workbook (.xlsx)",
            )
        parsed.add(part)
        root = _parse(path, package, part)
        base = part.rsplit("/", 1)[0] + "/" if "/" in part else ""
        rels_name = f"{base}_rels/{part.rsplit('/', 1)[-1]}.rels"
        rels = None
        if rels_name in names:
            parsed.add(rels_name)
            rels = _parse(path, package, rels_name)
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
    targets: dict[str, str] = {}
    for rel in rels if rels is not None else []:
        target = rel.get("Target", "")
        targets[rel.get("Id", "")] = target.lstrip("/") if target.startswith("/") else base + target
    sheets = root.find(f"{{{MAIN_NS}}}sheets")
    for sheet in list(sheets) if sheets is not None else []:
        rid = sheet.get(f"{{{REL_NS}}}id", "")
        if rid in targets:
            container.sheet_parts[sheet.get("name", "")] = targets[rid]
    return parsed


_FORMULA = re.compile(rb"<(?:\w+:)?f(?:\s[^>]*)?(?:/>|>(.*?)</(?:\w+:)?f>)", re.DOTALL)
# Cell references in either case: the parser reads `xfd9` as XFD9.
_CELL_START = re.compile(rb"<(?:\w+:)?c\s[^>]*?\br=\"([A-Za-z]+[0-9]+)\"")
# A cell holding something past the limits below: six-digit rows (100,000 and more) or columns past GZ.
# Styled empty cells (`<c r=".." s="1"/>`, which LibreOffice leaves down to row 1,048,576) hold nothing and
# cost the parser nothing, so only cells with content count.
_WITH_CONTENT = rb"\"[^>]*?(?<!/)>(?!</(?:\w+:)?c>)"
_FAR_ROW = re.compile(rb"<(?:\w+:)?c\s[^>]*?\br=\"[A-Za-z]{1,3}[1-9][0-9]{5,}" + _WITH_CONTENT)
_FAR_COLUMN = re.compile(
    rb"<(?:\w+:)?c\s[^>]*?\br=\"((?:[A-Za-z]{3}|[H-Zh-z][A-Za-z])[0-9]+)" + _WITH_CONTENT
)
# A cell element without an `r` attribute. The format allows it (the cell follows the one before), but the
# parser places such cells unreliably and the checks here, which go by `r`, would not see where they land.
# Excel, LibreOffice, Google Sheets, Gnumeric and the Python writers all write `r`, first.
_CELL_WITHOUT_R = re.compile(rb"<(?:\w+:)?c(?=[\s/>])(?![^>]*\sr=)")
MAX_SHEET_ROWS = 100_000
MAX_SHEET_COLUMN = "GZ"  # 208 columns
MAX_SHEET_PART = 512 * 1024 * 1024


# A cell holding an error value: its start tag (with `t="e"`), then its value up to the cell's end tag.
_ERROR_START = re.compile(rb'<(?:\w+:)?c(\s[^>]*?\bt="e"[^>]*?)(/?)>')
_CELL_END = re.compile(rb"</(?:\w+:)?c>")
_VALUE = re.compile(rb"<(?:\w+:)?v>(.*?)</(?:\w+:)?v>", re.DOTALL)
_REF_ATTR = re.compile(rb'\br="([A-Za-z]+[0-9]+)"')
_ERROR_CANDIDATE = re.compile(rb't="e"')

# Literal-led first passes, which the regex engine runs fast; the exact patterns above run only when these
# find a candidate (any match of theirs holds a match of these).
_FAR_CANDIDATE = re.compile(rb'r="(?:[A-Za-z]{1,3}[1-9][0-9]{5}|[A-Za-z]{3}[0-9]|[H-Zh-z][A-Za-z][0-9])')
# `<f` or `:f` (a prefixed tag), then white space, `/` or `>`; led by the `f`, rare in sheet XML.
_FORMULA_CANDIDATE = re.compile(rb"f(?<=[<:]f)[\s/>]")


def scan_sheet(source: Path | Container, part: str, sheet: str) -> dict[str, str]:
    """Check a sheet's extent before it is parsed, and find its formulas and error values: cell reference
    -> formula text (`=...`) or error value (`#REF!`).

    The spreadsheet parser allocates the whole rectangle up to the farthest cell, so one stray cell at
    XFD60000 would cost gigabytes: the references are checked here first, in the XML itself. The fast
    parser returns cached values only, so formulas are found here too: a cached value must never pass for
    something the recipient typed. The part's prolog is checked for a DTD here, on the XML inflated anyway.
    """
    if isinstance(source, Container) and part in source.scanned:
        return source.scanned[part]
    path = source.path if isinstance(source, Container) else source
    try:
        if isinstance(source, Container) and source.package is not None:
            data = _sheet_xml(path, source.package, part)
        else:
            with zipfile.ZipFile(path) as zf:
                data = _sheet_xml(path, Package(zf), part)
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, zlib.error) as exc:
        raise _refuse(f"the zip package is damaged or truncated ({exc})", path) from exc
    return _scan_xml(path, data, part, sheet)


def _scan_xml(path: Path, data: bytes, part: str, sheet: str) -> dict[str, str]:
    if _declares_dtd(lambda n: data[:n]):
        raise _dtd_refused(path, part)
    if _has_cell_without_reference(data):
        raise ReturnUnreadable(
            "the sheet has cells without a cell reference, which cannot be placed for sure",
            file=path,
            sheet=sheet,
            hint="open the workbook in Excel or LibreOffice Calc, save it and send that copy",
        )
    candidate = _FAR_CANDIDATE.search(data)
    # No exact match can start at or before the last '>' ahead of the first candidate.
    start = data.rfind(b">", 0, candidate.start()) + 1 if candidate else len(data)
    if _FAR_ROW.search(data, start):
        raise ReturnUnreadable(
            f"the sheet has cells at row {MAX_SHEET_ROWS:,} or below; a return is read up to that row",
            file=path,
            sheet=sheet,
            hint="delete the rows below the table and save again",
        )
    far = _FAR_COLUMN.search(data, start)
    if far:
        raise ReturnUnreadable(
            f"the sheet has cells beyond column {MAX_SHEET_COLUMN} ({far.group(1).decode().upper()})",
            file=path,
            sheet=sheet,
            hint="delete the columns to the right of the table and save again",
        )
    found: dict[str, str] = {}
    if _FORMULA_CANDIDATE.search(data):
        matches = list(_FORMULA.finditer(data))
        if matches:
            cells = [(m.start(), m.group(1).decode().upper()) for m in _CELL_START.finditer(data)]
            starts = [pos for pos, _ in cells]
            for m in matches:
                i = bisect.bisect_right(starts, m.start()) - 1
                if i >= 0:
                    body = (m.group(1) or b"").decode("utf-8", "replace")
                    found[cells[i][1]] = "=" + _unescape(body) if body else "(shared formula)"
    if _ERROR_CANDIDATE.search(data):
        # Error values (#REF!, #N/A, ...) without a formula: the parser reads them as empty cells.
        for m in _ERROR_START.finditer(data):
            ref = _REF_ATTR.search(m.group(1))
            if ref is None:
                continue
            value = ""
            if not m.group(2):
                end = _CELL_END.search(data, m.end())
                v = _VALUE.search(data, m.end(), end.start() if end else len(data))
                value = _unescape(v.group(1).decode("utf-8", "replace")).strip() if v else ""
            found.setdefault(ref.group(1).decode().upper(), value if value.startswith("#") else "#ERROR")
    return found


def _has_cell_without_reference(data: bytes) -> bool:
    # Over the cell table, only a cell tag not led by ` r="` is looked at closely: a scan at the speed of the
    # regex engine's literal search. A prefixed table (`<x:c`) is searched in full.
    table = _SHEET_DATA.search(data)
    if table is None or table.group(1):
        return _CELL_WITHOUT_R.search(data) is not None
    start, end = table.end(), data.find(b"</sheetData>", table.end())
    end = len(data) if end < 0 else end
    hit = _CELL_NOT_LED_BY_R.search(data, start, end)
    while hit is not None:
        if _CELL_WITHOUT_R.match(data, hit.start()):
            return True
        hit = _CELL_NOT_LED_BY_R.search(data, hit.end(), end)
    return False


_SHEET_DATA = re.compile(rb"<(\w+:)?sheetData\b")
_CELL_NOT_LED_BY_R = re.compile(rb'<c(?! r=")[\s/>]')


def _sheet_xml(path: Path, package: Package, part: str) -> bytes:
    if package.zf.getinfo(part).file_size > MAX_SHEET_PART:
        raise _refuse(
            "the sheet is too large to be a return",
            path,
            hint="delete the rows below the table and save again",
        )
    return package.read(part)


_XML_REF = re.compile(r"&(?:#x([0-9A-Fa-f]{1,6})|#([0-9]{1,7})|(lt|gt|amp|quot|apos));")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def _xml_text(s: str) -> str:
    """XML character data as text: character references and the five predefined entities resolved, in
    one pass (`&#38;lt;` is the text `&lt;`)."""

    def one(m: re.Match[str]) -> str:
        if m.group(3):
            return _ENTITIES[m.group(3)]
        code = int(m.group(1), 16) if m.group(1) else int(m.group(2))
        return chr(code) if code <= 0x10FFFF else "\ufffd"

    return _XML_REF.sub(one, s)


def _unescape(s: str) -> str:
    return (
        s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&apos;", "'")
        .replace("&amp;", "&")
    )
