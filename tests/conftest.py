"""Shared fixtures: small plans built in code, the bundled examples, a fixed clock."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from daplan_xlsx.model import Action, Area, GlossaryEntry, Lead, Plan

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
TEMPLATES = sorted((ROOT / "templates").glob("*.yaml"))
FILES = Path(__file__).resolve().parent / "files"

FIXED_TIME = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.timezone.utc)


def fixed_clock() -> dt.datetime:
    return FIXED_TIME


@pytest.fixture(autouse=True)
def _own_config_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing keys made by commands go to a folder of the test's own, never the user's configuration."""
    monkeypatch.setenv("DAPLAN_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))


def make_plan(n_local: int = 1) -> Plan:
    """Two areas, a handful of actions with awkward text, two leads and a glossary."""
    leads = [Lead(name="Chief Constable"), Lead(name="Head of Protect"), Lead(name="Area Commanders")]
    lg = [
        Action(
            id="LG-1",
            ref="1",
            action="There is a named domestic abuse chief officer lead.",
            response='=HYPERLINK("http://example.org")\nSecond line with ünïcödé',
            target="September 2014",
            leads=["Chief Constable", "Head of Protect"],
            status="Complete",
        ),
        Action(
            id="LG-2",
            ref="2",
            action="+Evidence exists of the chief officer lead driving activity.",
            response="-starts with a minus",
            target="2015",
            due=dt.date(2015, 3, 31),
            leads=["Head of Protect"],
            status="On track",
        ),
    ]
    lg += [
        Action(
            id=f"LG-L{i}", ref=f"L{i}", kind="local", action=f"@local action {i}", leads=["Area Commanders"]
        )
        for i in range(1, n_local + 1)
    ]
    ic = [
        Action(id="IC-1", ref="1", action="Call handling staff are clear.", leads=["Area Commanders"]),
    ]
    return Plan(
        id="plan-test",
        title="Test Constabulary Domestic Abuse Action Plan",
        force="Test Constabulary",
        published=dt.date(2014, 9, 1),
        leads=leads,
        areas=[
            Area(
                id="LG",
                name="Leadership and Governance",
                sheet="Leadership and Governance",
                key_criteria="Leadership and Governance",
                supporting_areas=["Strategic Leadership and Governance", "Performance Management"],
                actions=lg,
            ),
            Area(id="IC", name="Initial Contact", sheet="Initial Contact", actions=ic),
        ],
        glossary=[GlossaryEntry(term="MARAC", definition="Multi-Agency Risk Assessment Conference")],
    )


@pytest.fixture
def plan() -> Plan:
    return make_plan()


def has_libreoffice() -> bool:
    return shutil.which("soffice") is not None or shutil.which("libreoffice") is not None
