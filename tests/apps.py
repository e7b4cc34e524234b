"""Running the recipients' real apps (LibreOffice Calc, Gnumeric, poppler) from tests.

Tests that need an app skip when it is absent, except in CI (DAPLAN_REQUIRE_APPS=1), where absence fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def require(command: str) -> str:
    found = shutil.which(command)
    if found:
        return found
    message = f"{command} is not installed"
    if os.environ.get("DAPLAN_REQUIRE_APPS"):
        pytest.fail(message + " (DAPLAN_REQUIRE_APPS is set: CI must run the real-client tests)")
    pytest.skip(message)


def soffice_convert(src: Path, fmt: str, outdir: Path, profile: Path) -> Path:
    """Convert with a headless LibreOffice using its own profile folder; return the converted file."""
    soffice = require("soffice")
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--norestore",
            "--convert-to",
            fmt,
            "--outdir",
            str(outdir),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=240,
    )
    out = outdir / (src.stem + "." + fmt.split(":")[0])
    assert out.exists(), f"LibreOffice wrote no {out.name}"
    return out


def png_is_blank(png: Path) -> bool:
    """True when a rendered page is a single colour (decoded with the standard library only)."""
    import struct
    import zlib

    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    # Filter bytes aside, a blank page decompresses to one repeated byte value.
    return len(set(raw)) <= 2
