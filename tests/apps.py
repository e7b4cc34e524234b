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


# Headless Chromium with everything that would reach the network or leave state behind switched off.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium(page: Path, profile: Path, *args: str, timeout: int = 120) -> None:
    """Run headless Chromium (Debian's `chromium`) on a local page with its own new profile folder."""
    exe = require("chromium")
    profile.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
        check=True,
        capture_output=True,
        timeout=timeout,
    )


def chromium_screenshot(page: Path, png: Path, profile: Path, window: tuple[int, int] = (1280, 2000)) -> Path:
    chromium(page, profile, f"--screenshot={png}", f"--window-size={window[0]},{window[1]}")
    assert png.exists(), "Chromium wrote no screenshot"
    return png


def chromium_pdf(page: Path, pdf: Path, profile: Path) -> Path:
    """Print a page to PDF as a reader would, with the page's own print stylesheet."""
    chromium(page, profile, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert pdf.exists(), "Chromium wrote no PDF"
    return pdf
