"""The one family of errors daplan raises.

Every error knows what went wrong, where (file, sheet, cell or a path inside the plan) and what the user
should do next. Only the CLI turns them into the one-line message and the exit code.
"""

from __future__ import annotations


class DaplanError(Exception):
    """Base class: unusable input or a refused operation."""

    hint = "check the input and try again"

    def __init__(
        self,
        what: str,
        *,
        file: object | None = None,
        sheet: str | None = None,
        cell: str | None = None,
        where: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(what)
        self.what = what
        self.file = str(file) if file is not None else None
        self.sheet = sheet
        self.cell = cell
        self.where = where
        if hint is not None:
            self.hint = hint

    def location(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.where:
            parts.append(self.where)
        if self.sheet:
            parts.append(f"sheet {self.sheet}")
        if self.cell:
            parts.append(f"cell {self.cell}")
        return ", ".join(parts)

    def one_line(self) -> str:
        """`<what> (<file>[, sheet S, cell C]): <what to do>`, flattened to one line."""
        loc = self.location()
        text = f"{self.what} ({loc}): {self.hint}" if loc else f"{self.what}: {self.hint}"
        return " ".join(text.split())

    def __str__(self) -> str:
        return self.one_line()


class PlanFileError(DaplanError):
    """The plan file cannot be read or parsed: fix or replace the file."""

    hint = "fix the plan file and run again"


class PlanInvalid(DaplanError):
    """The plan file parses but breaks a rule of the model."""

    hint = "correct the value named and run `daplan validate` again"


class TemplateNotFound(DaplanError):
    """No template of that name is bundled."""

    hint = "run `daplan new --list-templates` to see the templates"


class KeyFileError(DaplanError):
    """The signing key file is missing or malformed."""

    hint = "create one with `daplan keygen -o FILE` or point --key-file at the right file"


class WorkbookWriteError(DaplanError):
    """A workbook could not be written as asked."""

    hint = "fix the plan value named, or choose another output path"


class OutputExists(DaplanError):
    """The output would overwrite something the user did not say could be replaced."""

    hint = "choose another path or pass --force"


class ReturnUnreadable(DaplanError):
    """A returned workbook cannot be read at all."""

    hint = "ask the sender to save it again as an Excel Workbook (.xlsx)"


class MetadataError(DaplanError):
    """A workbook's issue metadata is missing, damaged or belongs elsewhere."""

    hint = "use the workbook exactly as it was issued, or re-issue it"
