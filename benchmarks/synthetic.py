"""Synthetic plans for benchmarks: large, valid and deterministic, with text of realistic length.

Every random draw comes from one `random.Random(seed)`, so the same arguments give the same plan (and the
same workbook bytes when written with a fixed clock and issue id).
"""

from __future__ import annotations

import datetime as dt
import random

from daplan_xlsx.model import Action, Area, GlossaryEntry, Lead, Plan, default_statuses

# Words the prose is drawn from; short words are included so any length budget can be met exactly.
VOCABULARY: tuple[str, ...] = (
    "a",
    "an",
    "the",
    "of",
    "to",
    "in",
    "on",
    "by",
    "for",
    "and",
    "with",
    "from",
    "at",
    "is",
    "are",
    "be",
    "all",
    "each",
    "every",
    "new",
    "its",
    "our",
    "their",
    "this",
    "that",
    "will",
    "has",
    "have",
    "now",
    "force",
    "police",
    "officer",
    "officers",
    "staff",
    "victim",
    "victims",
    "offender",
    "offenders",
    "domestic",
    "abuse",
    "risk",
    "assessment",
    "safeguarding",
    "referral",
    "referrals",
    "partner",
    "partners",
    "agency",
    "agencies",
    "MARAC",
    "IDVA",
    "DASH",
    "training",
    "review",
    "reviews",
    "audit",
    "performance",
    "governance",
    "leadership",
    "strategy",
    "plan",
    "policy",
    "procedure",
    "guidance",
    "process",
    "processes",
    "supervision",
    "supervisors",
    "investigation",
    "investigations",
    "evidence",
    "arrest",
    "charge",
    "prosecution",
    "court",
    "bail",
    "protection",
    "order",
    "orders",
    "notice",
    "repeat",
    "incident",
    "incidents",
    "call",
    "calls",
    "handler",
    "handlers",
    "control",
    "room",
    "response",
    "attendance",
    "scene",
    "body",
    "worn",
    "video",
    "camera",
    "crime",
    "recording",
    "data",
    "quality",
    "compliance",
    "monitoring",
    "measure",
    "measures",
    "outcome",
    "outcomes",
    "survey",
    "feedback",
    "learning",
    "lessons",
    "homicide",
    "coercive",
    "controlling",
    "behaviour",
    "stalking",
    "harassment",
    "vulnerable",
    "children",
    "family",
    "families",
    "service",
    "services",
    "support",
    "specialist",
    "team",
    "teams",
    "unit",
    "district",
    "local",
    "national",
    "college",
    "practice",
    "delivered",
    "completed",
    "agreed",
    "introduced",
    "reviewed",
    "published",
    "embedded",
    "monitored",
    "improved",
    "extended",
    "commissioned",
    "scheduled",
    "planned",
    "reported",
    "updated",
    "approved",
    "quarterly",
    "monthly",
    "weekly",
    "regular",
    "consistent",
    "effective",
    "timely",
    "appropriate",
    "board",
    "group",
    "meeting",
    "meetings",
    "chief",
    "constable",
    "commissioner",
    "inspectorate",
    "recommendation",
    "recommendations",
    "progress",
    "target",
    "deadline",
    "pilot",
    "evaluation",
)

AREA_NAMES: tuple[tuple[str, str], ...] = (
    ("Leadership and Governance", "Leadership and Governance"),
    ("Initial Contact", "Initial Contact"),
    ("First Response", "First Response"),
    ("Investigation", "Investigation"),
    ("Managing and supporting victims and tackling offenders", "Victims and Offenders"),
    ("Learning", "Learning"),
)

ROLES: tuple[str, ...] = (
    "Chief Constable",
    "Deputy Chief Constable",
    "ACC Local Policing",
    "ACC Crime and Justice",
    "Head of Protect",
    "Head of Public Protection",
    "Head of Crime",
    "Head of Contact Management",
    "Force Control Room Manager",
    "Head of Learning and Development",
    "Head of Performance",
    "Head of ICT",
    "Head of Criminal Justice",
    "Head of Safeguarding",
    "MARAC Coordinator",
    "Domestic Abuse Coordinator",
    "Head of Professional Standards",
    "Head of Intelligence",
    "Head of Victim Services",
    "Partnership Manager",
    "Head of Corporate Communications",
    "Head of Legal Services",
)

GLOSSARY: tuple[str, ...] = (
    "ACPO",
    "CAADA",
    "CPS",
    "DA",
    "DASH",
    "DHR",
    "DVPO",
    "HMIC",
    "IDVA",
    "MARAC",
    "MASH",
    "PCC",
    "SDVC",
)


def _prose(rng: random.Random, lo: int, hi: int) -> str:
    """Sentences of vocabulary words, between `lo` and `hi` characters long (hi >= lo + 3, lo >= 1)."""
    goal = rng.randint(lo, hi)
    words: list[str] = []
    size = 0  # length of " ".join(words) including sentence full stops so far
    left = 0  # words left in the current sentence
    while size < goal:
        word = rng.choice(VOCABULARY)
        start = left == 0
        if start:
            word = word[0].upper() + word[1:]
        add = len(word) + (2 if start and words else 1 if words else 0)
        if size + add + 1 > hi:  # keep room for the final full stop
            if size >= lo - 1:
                break
            continue
        if start:
            if words:
                words[-1] += "."
            left = rng.randint(6, 18)
        words.append(word)
        size += add
        left -= 1
    return " ".join(words).rstrip(".") + "."


def _response(rng: random.Random) -> str:
    """Empty for about one in five actions; otherwise 1-4 lines totalling at most 900 characters."""
    if rng.random() < 0.2:
        return ""
    total = rng.randint(20, 900)
    n_lines = min(rng.randint(1, 4), max(1, total // 40))
    budget = (total - (n_lines - 1)) // n_lines
    return "\n".join(_prose(rng, max(1, budget // 2), budget) for _ in range(n_lines))


def _lead_register(n_leads: int) -> list[str]:
    """`n_leads` distinct role names: the named roles, then numbered district commanders."""
    names = list(ROLES[:n_leads])
    names += [f"District Commander {i:02d}" for i in range(1, n_leads - len(names) + 1)]
    return names


def make_plan(n_actions: int = 20_000, n_areas: int = 6, n_leads: int = 50, seed: int = 1) -> Plan:
    """A valid plan of `n_actions` actions spread evenly over `n_areas` areas, drawn from `seed`."""
    rng = random.Random(seed)
    leads = _lead_register(n_leads)
    statuses = [s.name for s in default_statuses()]
    status_weights = [20, 35, 12, 6, 18, 6, 3][: len(statuses)]
    first_due = dt.date(2015, 1, 1).toordinal()
    first_update = dt.datetime(2015, 1, 1, 9, 0).timestamp()

    areas: list[Area] = []
    for a in range(n_areas):
        name, sheet = AREA_NAMES[a] if a < len(AREA_NAMES) else (f"Capability area {a + 1}", f"Area {a + 1}")
        count = n_actions // n_areas + (1 if a < n_actions % n_areas else 0)
        n_local = round(count * 0.1)
        actions: list[Action] = []
        for x in range(count):
            local = x >= count - n_local
            n_action_leads = rng.choice((1, 1, 2, 2, 3))
            updated = None
            updated_by = ""
            if rng.random() < 0.4:
                stamp = first_update + rng.randrange(0, 2 * 365 * 86_400, 60)
                updated = dt.datetime.fromtimestamp(stamp, tz=dt.timezone.utc)
                updated_by = rng.choice(leads)
            due = dt.date.fromordinal(first_due + rng.randrange(3 * 365)) if rng.random() < 0.3 else None
            actions.append(
                Action(
                    id=f"A{a + 1}-{x + 1:05d}",
                    ref=f"L{x - (count - n_local) + 1}" if local else str(x + 1),
                    kind="local" if local else "national",
                    action=_prose(rng, 150, 450),
                    response=_response(rng),
                    target=_prose(rng, 10, 60),
                    due=due,
                    leads=rng.sample(leads, n_action_leads),
                    status=rng.choices(statuses, weights=status_weights)[0],
                    updated=updated,
                    updated_by=updated_by,
                    notes=_prose(rng, 20, 200) if rng.random() < 0.15 else "",
                )
            )
        areas.append(
            Area(
                id=f"A{a + 1}",
                name=name,
                sheet=sheet,
                key_criteria=_prose(rng, 40, 160),
                supporting_areas=[_prose(rng, 15, 45).rstrip(".") for _ in range(rng.randint(2, 4))],
                actions=actions,
            )
        )

    return Plan(
        id="bench-plan",
        title="Synthetic Domestic Abuse Action Plan",
        force="Example Constabulary",
        published=dt.date(2015, 3, 31),
        classification="OFFICIAL",
        revision=3,
        background=_prose(rng, 400, 900),
        overarching_capabilities=_prose(rng, 100, 300),
        leads=[Lead(name=n) for n in leads],
        areas=areas,
        glossary=[GlossaryEntry(term=t, definition=_prose(rng, 80, 300)) for t in GLOSSARY],
    )
