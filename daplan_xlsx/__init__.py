"""daplan_xlsx: run a police force's Domestic Abuse Action Plan through Excel workbooks."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .diff import diff_return
    from .errors import DaplanError
    from .export import export_plan, write_export
    from .importer import import_workbook
    from .master import master_content, write_master
    from .merge import commit_merge, merge_returns
    from .model import Action, Area, GlossaryEntry, Lead, Plan, Status
    from .planfile import dumps_plan, load_plan, loads_plan, save_plan
    from .reader import read_return
    from .status import status_report
    from .writer import write_workbook

# Every public name is imported on first use: `daplan --help` must not pay for pydantic, PyYAML or the
# workbook libraries (the command line imports this package before it parses anything).
_LAZY = {
    "DaplanError": "errors",
    "Action": "model",
    "Area": "model",
    "GlossaryEntry": "model",
    "Lead": "model",
    "Plan": "model",
    "Status": "model",
    "dumps_plan": "planfile",
    "load_plan": "planfile",
    "loads_plan": "planfile",
    "save_plan": "planfile",
    "write_workbook": "writer",
    "write_master": "master",
    "master_content": "master",
    "read_return": "reader",
    "diff_return": "diff",
    "merge_returns": "merge",
    "commit_merge": "merge",
    "status_report": "status",
    "export_plan": "export",
    "write_export": "export",
    "import_workbook": "importer",
}

__all__ = [
    "Action",
    "Area",
    "DaplanError",
    "GlossaryEntry",
    "Lead",
    "Plan",
    "Status",
    "commit_merge",
    "diff_return",
    "dumps_plan",
    "export_plan",
    "import_workbook",
    "load_plan",
    "loads_plan",
    "master_content",
    "merge_returns",
    "read_return",
    "save_plan",
    "status_report",
    "write_export",
    "write_master",
    "write_workbook",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
