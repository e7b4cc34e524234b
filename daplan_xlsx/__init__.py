"""daplan_xlsx: run a police force's Domestic Abuse Action Plan through Excel workbooks."""

from .errors import DaplanError
from .model import Action, Area, GlossaryEntry, Lead, Plan, Status
from .planfile import dumps_plan, load_plan, loads_plan, save_plan

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
]
