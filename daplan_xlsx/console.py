"""What reaches a terminal: text from plans and returns made harmless, in any console encoding.

A return is an untrusted file, and a plan may hold anything a return once said: an escape sequence (ESC,
CSI), a backspace, a carriage return or a line break inside a name could move the cursor, clear the screen
or fake a line of a report. `printable` shows every such character as an escape (`\\x1b`) instead; the
renderers pass each value from a plan or a return through it.

Plan owners work on Windows consoles (cp1252, cp850) as well as UTF-8 terminals. `configure_streams`, called
once by the command line, makes stdout and stderr write the marks the reports use in ASCII where the console
cannot show them (`→` as `->`, `⏎` as `|`, `…` as `...`) and anything else it cannot show as `?`, never
an encoding error.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
import sys
from typing import Any

# The marks the reports use, and what they become on a console that cannot show them.
ASCII_MARKS = {
    "→": "->",
    "⏎": "|",
    "…": "...",
    "–": "-",
    "—": "-",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "•": "*",
    "×": "x",
}
ERRORS = "daplan-marks"
_ASCII_CODEC = "daplan-ascii"

# C0 controls, DEL and C1 controls (CSI is U+009B), the Unicode line and paragraph separators, and the
# bidirectional controls that reorder what a line shows.
_OTHER = "\x7f-\x9f\u2028\u2029\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069"
_UNSAFE_LINE = re.compile(f"[\x00-\x1f{_OTHER}]")
_UNSAFE_TEXT = re.compile(f"[\x00-\x09\x0b-\x1f{_OTHER}]")  # keeps line breaks
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, lines: bool = False) -> str:
    """`text` with every control character shown as an escape (`\\x1b`, `\\n`), so that printing it cannot
    act on the terminal or fake a line. With `lines`, line breaks are kept (the text is printed as a block
    of lines)."""
    s = text if isinstance(text, str) else str(text)
    pattern = _UNSAFE_TEXT if lines else _UNSAFE_LINE
    if pattern.search(s) is None:
        return s
    return pattern.sub(_escape, s)


def shorten(text: str, width: int) -> str:
    """`text` cut to `width` characters, an ellipsis marking the cut (ASCII `...` on a console without it)."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def when(stamp: str) -> str:
    """An ISO time as a person reads it, in UTC: `30 Nov 2026 10:26`; the text itself if it is not one."""
    try:
        t = dt.datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return printable(stamp)
    if t.tzinfo is not None:
        t = t.astimezone(dt.timezone.utc)
    return f"{t.day} {_MONTHS[t.month - 1]} {t.year} {t.hour:02d}:{t.minute:02d}"


def _marks(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    piece = exc.object[exc.start : exc.end]
    return "".join(ASCII_MARKS.get(ch, "?") for ch in piece), exc.end


codecs.register_error(ERRORS, _marks)


class _AsciiEncoder(codecs.IncrementalEncoder):
    def encode(self, input: str, final: bool = False) -> bytes:
        return codecs.ascii_encode(input, self.errors)[0]


def _search(name: str) -> codecs.CodecInfo | None:
    # ASCII under another name: click replaces a stream whose encoding is "ascii" by a UTF-8 one, which
    # would write bytes the console cannot show.
    if name.replace("-", "_") != _ASCII_CODEC.replace("-", "_"):
        return None
    ascii_codec = codecs.lookup("ascii")
    return codecs.CodecInfo(
        name=_ASCII_CODEC,
        encode=lambda s, errors="strict": codecs.ascii_encode(s, errors),
        decode=ascii_codec.decode,
        incrementalencoder=_AsciiEncoder,
        incrementaldecoder=ascii_codec.incrementaldecoder,
    )


codecs.register(_search)


def _unicode(encoding: str) -> bool:
    return codecs.lookup(encoding).name in ("utf-8", "utf-16", "utf-32", "utf-8-sig")


def configure_streams() -> None:
    """Make stdout and stderr show what they cannot encode as ASCII marks or `?`, never fail on it."""
    for name in ("stdout", "stderr"):
        stream: Any = getattr(sys, name, None)
        encoding = getattr(stream, "encoding", None)
        reconfigure = getattr(stream, "reconfigure", None)
        if not encoding or reconfigure is None:
            continue
        try:
            if _unicode(encoding):
                continue
            if codecs.lookup(encoding).name == "ascii":
                reconfigure(encoding=_ASCII_CODEC, errors=ERRORS)
            else:
                reconfigure(errors=ERRORS)
        except (LookupError, ValueError, OSError):  # an unknown encoding, a stream that cannot change
            continue


def unicode_stdout() -> bool:
    """Whether stdout shows any character (for `--json`: otherwise written as ASCII escapes, losing none)."""
    encoding = getattr(sys.stdout, "encoding", None)
    if not isinstance(encoding, str):
        return False
    try:
        return _unicode(encoding)
    except LookupError:
        return False
