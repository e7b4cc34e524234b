"""Normalisation of field values, defined once and applied to base and returned values alike.

Whatever app re-saved a workbook, an untouched value must compare equal to its base: line endings, trailing
whitespace, non-breaking spaces, numbers typed into text fields, dates in their many shapes, and the case
of dropdown values are all folded here, and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass, field

# Excel's day zero for the 1900 date system (it counts the fictitious 29 February 1900, so day 60 is skipped
# by starting from 30 December 1899) and for the 1904 system of old Mac workbooks.
EPOCH_1900 = dt.date(1899, 12, 30)
EPOCH_1904 = dt.date(1904, 1, 1)
# Serial numbers accepted as dates: 1 January 1950 to 31 December 2099 in the 1900 system.
SERIAL_RANGE = (18264, 73050)
# Any due date: Excel's 1900 system is right only from 1 March 1900 (it counts a 29 February 1900), and
# has no year past 9999.
FIRST_DATE = dt.date(1900, 3, 1)
LAST_DATE = dt.date(9999, 12, 31)


def date_problem(day: dt.date) -> str | None:
    """Why a date cannot be a due date (before 1 March 1900), or None."""
    if day < FIRST_DATE:
        return f"{day.isoformat()} is before 1 March 1900, the first date a workbook holds for sure"
    return None


_SPACES = dict.fromkeys(map(ord, "\u00a0\u2007\u202f\u2009\u200a\u3000"), " ")
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\ufeff"), None)

_MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
_ISO = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
_NUMERIC_UK = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})$")
_WORDY = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?[ -]([A-Za-z]+)\.?,?[ -](\d{2}|\d{4})$")


class DateProblem(ValueError):
    """A value in a date field that is not a date we can be sure of."""


# Anything text() would change: a carriage return, a special space, white space at a line's end or at the
# start, or a zero-width character. Most cells have none, and skip the work. Tested piece by piece: one
# regex with all four alternatives tried at every character cost more than the rest of reading a row.
_SPECIAL = re.compile("[\r\u00a0\u2007\u202f\u2009\u200a\u3000\u200b\ufeff]")
_SPACE_BEFORE_NEWLINE = re.compile(r"[^\S\n]\n")


def _needs_work(s: str) -> bool:
    return bool(
        s
        and (
            s[0].isspace()
            or s[-1].isspace()  # also covers white space before a final newline: the newline is white space
            or _SPECIAL.search(s)
            or ("\n" in s and _SPACE_BEFORE_NEWLINE.search(s))
        )
    )


def text(value: object) -> str:
    """Any cell value as normalised text (for free-text fields)."""
    if type(value) is str and not _needs_work(value):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        # Excel keeps 15 significant digits; 2015.0 typed into a text field is "2015".
        return str(int(value)) if value.is_integer() else f"{value:.15g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.replace(microsecond=0).isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    s = str(value).translate(_SPACES).translate(_ZERO_WIDTH)
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in s.split("\n")]
    return "\n".join(lines).strip()


def _two_digit_year(y: str) -> int:
    # Only a year typed with two digits is this century's: "0001" is the year 1 (and refused).
    return 2000 + int(y) if len(y) == 2 else int(y)


def date(value: object, epoch1904: bool = False) -> str:
    """A due date as ISO `YYYY-MM-DD`, or '' when empty. Raises DateProblem when it cannot be sure."""
    if value is None or value == "":
        return ""
    if isinstance(value, dt.date):
        day = value.date() if isinstance(value, dt.datetime) else value
        problem = date_problem(day)
        if problem:
            raise DateProblem(f"{problem} (type it as 31/03/2015)")
        return day.isoformat()
    if isinstance(value, bool):
        raise DateProblem(f"{value!r} is not a date")
    if isinstance(value, (int, float)):
        return _serial(float(value), epoch1904)
    s = text(value)
    if not s:
        return ""
    m = _ISO.match(s)
    if m:
        return _make(int(m[1]), int(m[2]), int(m[3]), s)
    m = _NUMERIC_UK.match(s)
    if m:
        # UK order, day first. 03/04/2015 is 3 April here, as a UK user typing it means.
        return _make(_two_digit_year(m[3]), int(m[2]), int(m[1]), s)
    m = _WORDY.match(s)
    if m and m[2].lower() in _MONTHS:
        return _make(_two_digit_year(m[3]), _MONTHS[m[2].lower()], int(m[1]), s)
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return _serial(float(s), epoch1904)
    raise DateProblem(f"{s!r} is not a date (type it as 31/03/2015)")


def _serial(n: float, epoch1904: bool) -> str:
    lo, hi = SERIAL_RANGE
    if not lo <= n <= hi:
        raise DateProblem(f"{n:g} is not a plausible date")
    epoch = EPOCH_1904 if epoch1904 else EPOCH_1900
    return (epoch + dt.timedelta(days=int(n))).isoformat()


def _make(y: int, m: int, d: int, original: str) -> str:
    try:
        day = dt.date(y, m, d)
    except ValueError as exc:
        raise DateProblem(f"{original!r} is not a valid date") from exc
    if date_problem(day):
        raise DateProblem(f"{original!r} is before 1 March 1900; type a date such as 31/03/2015")
    return day.isoformat()


def _fold(s: str) -> str:
    return " ".join(s.split()).casefold()


@dataclass(frozen=True)
class Vocabulary:
    """The allowed values of a dropdown field, matched ignoring case and spacing."""

    names: tuple[str, ...]
    _index: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in reversed(self.names):
            self._index[_fold(name)] = name

    def canonical(self, value: str) -> str | None:
        if value in self.names:
            return value
        return self._index.get(_fold(value))

    def nearest(self, value: str) -> str | None:
        folded = {_fold(n): n for n in self.names}
        close = difflib.get_close_matches(_fold(value), list(folded), n=1, cutoff=0.5)
        return folded[close[0]] if close else None


def choice(value: object, vocabulary: Vocabulary) -> str:
    """A dropdown value in its canonical spelling; raises ValueError naming the nearest valid value."""
    s = text(value)
    if not s:
        return ""
    found = vocabulary.canonical(s)
    if found is not None:
        return found
    near = vocabulary.nearest(s)
    suggestion = f"; did you mean {near!r}?" if near else ""
    raise ValueError(f"{s!r} is not in the list{suggestion}")
