"""Bundled plan templates and examples, found both in a checkout and in an installed wheel."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

from .errors import TemplateNotFound
from .model import Plan
from .planfile import loads_plan

_CHECKOUT = Path(__file__).resolve().parent.parent


def _folder(package: str, checkout_name: str) -> Path:
    # Installed from a wheel, templates/ and examples/ are the sub-packages daplan_xlsx.templates_data and
    # daplan_xlsx.examples_data (see pyproject.toml); in a checkout they stand beside the package.
    # They have no __init__.py, so they are namespace packages: ask the import system where they live.
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if Path(location).is_dir():
                return Path(location)
    return _CHECKOUT / checkout_name


def templates_dir() -> Path:
    return _folder("daplan_xlsx.templates_data", "templates")


def examples_dir() -> Path:
    return _folder("daplan_xlsx.examples_data", "examples")


def list_templates() -> dict[str, str]:
    """Template name -> its title line."""
    out = {}
    for path in sorted(templates_dir().glob("*.yaml")):
        plan = loads_plan(path.read_text(encoding="utf-8"), path)
        out[path.stem] = plan.title
    return out


def load_template(name: str) -> Plan:
    path = templates_dir() / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in templates_dir().glob("*.yaml"))) or "none"
        raise TemplateNotFound(f"no template named {name!r} (bundled: {known})")
    return loads_plan(path.read_text(encoding="utf-8"), path)


def new_plan(template: str, force: str) -> Plan:
    """A fresh plan for `force` from a template: new plan id, revision 1, empty responses.

    The template's notes are left out: they are its editors' notes (which published plan each wording came
    from), not the force's; a force's plan starts with notes of its own to write.
    """
    plan = load_template(template)
    data = plan.model_dump()
    data.update(
        id=f"plan-{uuid.uuid4()}",
        force=force,
        title=f"{force} Domestic Abuse Action Plan" if force else plan.title,
        published=None,
        revision=1,
    )
    first_status = plan.statuses[0].name
    for area in data["areas"]:
        for action in area["actions"]:
            action.update(response="", status=first_status, updated=None, updated_by="", due=None, notes="")
    return Plan.model_validate(data)
