"""daplan_xlsx: run a police force's Domestic Abuse Action Plan through Excel workbooks."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .errors import DaplanError
from .model import Action, Area, GlossaryEntry, Lead, Plan, Status
from .planfile import dumps_plan, load_plan, loads_plan, save_plan

# The workbook side is imported on first use, so `daplan --help` and plain model work stay fast.
_LAZY = {
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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Action",
    "Area",
    "DaplanError",
    "GlossaryEntry",
    "Lead",
    "Plan",
    "Status",
    "dumps_plan",
    "load_plan",
    "loads_plan",
    "save_plan",
    *_LAZY,
]
