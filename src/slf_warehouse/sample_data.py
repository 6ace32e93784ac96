"""The deterministic sample data set, written exactly in the formats of the source contract.

Every figure the answer to Enhedslisten's inquiry states is a consequence of the parameters in
:class:`SampleConfig`; the pipeline must *compute* those figures from the files written here.
A second configuration with other numbers proves that nothing downstream is typed in.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from slf_warehouse import contract
from slf_warehouse import export_formats as fmt

APMF = "APMF"
NON_APMF_SHARES = {"OPSPARING": Decimal("0.45"), "KOMPETENCE": Decimal("0.30"), "PULJE": Decimal("0.25")}


@dataclass(frozen=True)
class SampleConfig:
    seed: int = 2024
    window_start: date = date(2022, 1, 1)
    window_end: date = date(2024, 6, 30)
    # Allocations whose period lies inside the window add up to this; one more lies after it.
    total_allocated_kr: int = 26_000_000
    apmf_kr: int = 6_600_000
    learning_partners_latest: int = 16
    project_employees_latest: int = 1
    section_leaders_latest: int = 1
    survey_r_squared: dict[int, float] = field(default_factory=lambda: {2022: 0.74, 2023: 0.80})
    # Units in the survey with fewer than 5 counted respondents (suppressed).
    suppressed_units: int = 2
    non_programme_lines_per_month: int = 24


def _kr(value: Decimal | float | int) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _months(start: date, end: date) -> list[date]:
    months, current = [], start.replace(day=1)
    while current <= end:
        months.append(current)
        current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
    return months


def _month_end(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _split(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split an amount in proportion to weights so the parts add up to the total exactly."""
    weight_sum = sum(weights)
    parts = [_kr(total * w / weight_sum) for w in weights]
    parts[-1] += total - sum(parts)
    return parts


# --- organisational units -------------------------------------------------------------------------

SCHOOLS = [
    "Skovvangskolen",
    "Ellekærskolen",
    "Møllevangskolen",
    "Åby Skole",
    "Tranbjergskolen",
    "Viby Skole",
    "Ellevangskolen",
    "Risskov Skole",
    "Lystrup Skole",
    "Elev Skole",
    "Sødalskolen",
    "Frederiksbjerg Skole",
    "Katrinebjergskolen",
    "Næshøjskolen",
]
DAYCARE = [
    "Børnehuset Sol & Måne",
    'Børnehuset "Spiren", Hasle',
    "Dagtilbud Åbyhøj",
    "Vuggestuen Møllebakken",
    "Børnehaven Ørnereden",
    "Dagtilbud Tranbjerg",
    "Børnehuset Skæring",
    "Dagtilbud Gellerup-Toveshøj",
    "Børnehaven Lærkereden",
    "Dagtilbud Højbjerg",
    "Integreret institution Kærgården",
    "Dagtilbud Risskov",
]
LEISURE = ["Fritidscenter Viby", "Klub Øst", "UngiAarhus Nord", "Fritidscenter Frydenlund", "Klub Syd"]
DISTRICTS = ["Nord", "Syd", "Vest", "Øst", "Midt"]
SLF_UNIT = "FF-SLF"


@dataclass(frozen=True)
class Unit:
    unit_id: str
    name: str
    unit_type: str
    district: str
    cost_centre: str
    active_from: date
    active_to: date | None = None


def build_units() -> list[Unit]:
    units = [
        Unit(
            SLF_UNIT,
            "Stærkere Læringsfællesskaber, sekretariatet",
            "faellesfunktion",
            "Midt",
            "041203",
            date(2019, 8, 1),
        ),
        Unit("FF-PAED", "Pædagogisk Afdeling", "faellesfunktion", "Midt", "041210", date(2015, 1, 1)),
    ]
    for i, name in enumerate(SCHOOLS):
        units.append(
            Unit(f"SKOLE-{i + 1:03d}", name, "skole", DISTRICTS[i % 5], f"{310100 + i * 7}", date(2007, 1, 1))
        )
    for i, name in enumerate(DAYCARE):
        units.append(
            Unit(
                f"DAG-{101 + i}",
                name,
                "dagtilbud",
                DISTRICTS[(i + 2) % 5],
                f"{520400 + i * 11}",
                date(2011, 3, 1),
            )
        )
    for i, name in enumerate(LEISURE):
        units.append(
            Unit(
                f"FRI-{i + 1:03d}",
                name,
                "fritidstilbud",
                DISTRICTS[(i + 4) % 5],
                f"{530900 + i * 3}",
                date(2013, 8, 1),
            )
        )
    # A unit merged into another: still in the register, no longer active.
    units.append(
        Unit(
            "DAG-190",
            "Børnehaven Bøgebakken (lukket)",
            "dagtilbud",
            "Vest",
            "520999",
            date(2009, 1, 1),
            date(2022, 7, 31),
        )
    )
    return units


# --- allocations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    allocation_id: str
    source: str
    decided: date
    period_from: date
    period_to: date
    amount: Decimal
    case_no: str
    remark: str


def _budget_periods(cfg: SampleConfig) -> list[tuple[date, date]]:
    periods = []
    for year in range(cfg.window_start.year, cfg.window_end.year + 1):
        start = max(cfg.window_start, date(year, 1, 1))
        end = min(cfg.window_end, date(year, 12, 31))
        periods.append((start, end))
    return periods


def build_allocations(cfg: SampleConfig) -> list[Allocation]:
    periods = _budget_periods(cfg)
    month_weights = [Decimal(len(_months(a, b))) for a, b in periods]
    non_apmf = Decimal(cfg.total_allocated_kr - cfg.apmf_kr)
    source_totals = dict(zip(NON_APMF_SHARES, _split(non_apmf, list(NON_APMF_SHARES.values())), strict=True))
    source_totals = {k: Decimal(round(v, -3)) for k, v in source_totals.items()}
    source_totals["PULJE"] += non_apmf - sum(source_totals.values())
    source_totals[APMF] = Decimal(cfg.apmf_kr)

    remarks = {
        "OPSPARING": "Overført fra centralt opsparede midler – Børn og Unge",
        "KOMPETENCE": "Kompetenceudvikling, ledere og ressourcepersoner",
        "PULJE": "Central pulje til kvalitetsudvikling",
        APMF: 'Donation, "Stærkere Læringsfællesskaber" – tilsagn fra A.P. Møller Fonden',
    }
    allocations: list[Allocation] = []
    for source, total in source_totals.items():
        for (start, end), amount in zip(periods, _split(total, month_weights), strict=True):
            n = len(allocations) + 1
            decided = date(start.year - 1, 12, 10) if start.month == 1 else start - timedelta(days=20)
            allocations.append(
                Allocation(
                    f"BEV-{start.year}-{n:03d}",
                    source,
                    decided,
                    start,
                    end,
                    amount,
                    f"{start.year - 1}-{1000 + n:06d}",
                    remarks[source] if n % 2 else "",
                )
            )
    # Money decided for the half-year after the window: must not count in the window's total.
    after_start = cfg.window_end + timedelta(days=1)
    allocations.append(
        Allocation(
            f"BEV-{after_start.year}-{len(allocations) + 1:03d}",
            "OPSPARING",
            after_start - timedelta(days=30),
            after_start,
            date(after_start.year, 12, 31),
            _kr(source_totals["OPSPARING"] / 5),
            f"{after_start.year}-{2000:06d}",
            "Videreførelse 2. halvår",
        )
    )
    return allocations


# --- staff and payroll ---------------------------------------------------------------------------

FIRST_NAMES = [
    "Søren",
    "Mette",
    "Anne",
    "Jørgen",
    "Lærke",
    "Mads",
    "Signe",
    "Bo",
    "Åse",
    "Niels",
    "Hanne",
    "Ida",
    "Rasmus",
    "Birgitte",
    "Thea",
    "Kasper",
    "Ulla",
    "Morten",
    "Trine",
    "Ørjan",
]
LAST_NAMES = [
    "Jensen",
    "Nielsen",
    "Hansen",
    "Pedersen",
    "Andersen",
    "Christensen",
    "Larsen",
    "Sørensen",
    "Rasmussen",
    "Jørgensen",
    "Madsen",
    "Kristensen",
    "Østergaard",
    "Mølgaard",
    "Bæk",
]
ROLE_TITLES = {
    "laeringspartner": "Læringspartner",
    "projektmedarbejder": "Projektmedarbejder",
    "sektionsleder": "Sektionsleder, Stærkere Læringsfællesskaber",
}
MONTHLY_BASE = {
    "laeringspartner": Decimal("38500"),
    "projektmedarbejder": Decimal("36200"),
    "sektionsleder": Decimal("52400"),
}
LP_FTE = [Decimal("0.5"), Decimal("0.6"), Decimal("0.8"), Decimal("0.5"), Decimal("1.0")]


@dataclass(frozen=True)
class Employee:
    number: str
    name: str
    role: str
    fte: Decimal
    first_month: int  # index into the payroll months
    last_month: int


def build_staff(cfg: SampleConfig, n_months: int) -> list[Employee]:
    staff: list[Employee] = []

    def add(role: str, fte: Decimal, first: int, last: int) -> None:
        i = len(staff)
        name = f"{FIRST_NAMES[i % len(FIRST_NAMES)]} {LAST_NAMES[(i * 7) % len(LAST_NAMES)]}"
        if i == 3:
            name = 'Hansen, Søren "Sønne"'  # the payroll export does hold names like this
        staff.append(Employee(f"{204311 + i * 1733:06d}", name, role, fte, first, last))

    last = n_months - 1
    add("sektionsleder", Decimal("1.0"), 0, last)
    for _ in range(cfg.project_employees_latest):
        add("projektmedarbejder", Decimal("1.0"), 0, last)
    # Learning partners join in waves; one leaves half-way and is replaced, as happens.
    start_count = max(1, math.ceil(cfg.learning_partners_latest * 0.6))
    for j in range(cfg.learning_partners_latest):
        first = (
            0
            if j < start_count
            else (j - start_count + 1) * n_months // (cfg.learning_partners_latest - start_count + 2)
        )
        add("laeringspartner", LP_FTE[j % len(LP_FTE)], first, last)
    add("laeringspartner", Decimal("0.8"), 0, n_months // 2)
    return staff


@dataclass(frozen=True)
class PayLine:
    employee: Employee
    month: date
    kind: str
    amount: Decimal


def build_payroll(staff: list[Employee], months: list[date]) -> list[PayLine]:
    lines = []
    for m_index, month in enumerate(months):
        raise_factor = Decimal("1.02") ** (month.year - months[0].year)
        for emp in staff:
            if not emp.first_month <= m_index <= emp.last_month:
                continue
            base = _kr(MONTHLY_BASE[emp.role] * emp.fte * raise_factor)
            lines.append(PayLine(emp, month, "grundloen", base))
            lines.append(PayLine(emp, month, "tillaeg", _kr(Decimal("1850") * emp.fte)))
            lines.append(PayLine(emp, month, "pension", _kr(base * Decimal("0.171"))))
    return lines


# --- activities ----------------------------------------------------------------------------------

ACTIVITY_TYPES = ["laeringsdag", "introduktionsdag", "lederseminar"]
TARGET_GROUPS = ["ledere", "ressourcepersoner", "faglige_fyrtaarne", "alle"]
ACTIVITY_TITLES = {
    "laeringsdag": "Læringsdag: reflekterende dialog i teamet",
    "introduktionsdag": "Introduktionsdag for nye ledere og ressourcepersoner",
    "lederseminar": "Lederseminar – professionel dømmekraft",
}


@dataclass(frozen=True)
class Activity:
    activity_id: str
    activity_type: str
    title: str
    held_on: date
    target_group: str
    district: str
    participants: int


def build_activities(cfg: SampleConfig, rng: random.Random) -> list[Activity]:
    activities: list[Activity] = []
    months = _months(cfg.window_start, cfg.window_end)
    for i, month in enumerate(months):
        if month.month in (7, 12):
            continue  # no activities in the holidays
        for k in range(1 + (i % 3 == 0)):
            kind = ACTIVITY_TYPES[(i + k) % 3]
            held = month + timedelta(days=8 + 7 * k + rng.randrange(5))
            activities.append(
                Activity(
                    f"AKT-{held.year}-{len(activities) + 1:03d}",
                    kind,
                    f"{ACTIVITY_TITLES[kind]} ({held.strftime('%m/%Y')})",
                    held,
                    TARGET_GROUPS[(i + k) % 4],
                    "" if (i + k) % 3 == 0 else DISTRICTS[(i + k) % 5],
                    rng.randrange(18, 160),
                )
            )
    return activities


# --- ledger --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Posting:
    voucher: str
    posted: date
    function: str
    art: str
    cost_centre: str
    project: str
    activity_id: str
    source: str
    amount: Decimal
    text: str


def _source_shares_by_year(allocations: list[Allocation], cfg: SampleConfig) -> dict[int, dict[str, Decimal]]:
    shares: dict[int, dict[str, Decimal]] = {}
    for a in allocations:
        if a.source == APMF or a.period_to > cfg.window_end:
            continue
        shares.setdefault(a.period_from.year, {}).setdefault(a.source, Decimal(0))
        shares[a.period_from.year][a.source] += a.amount
    return shares


def build_postings(
    cfg: SampleConfig,
    rng: random.Random,
    units: list[Unit],
    allocations: list[Allocation],
    payroll: list[PayLine],
    activities: list[Activity],
) -> dict[date, list[Posting]]:
    slf_cc = next(u.cost_centre for u in units if u.unit_id == SLF_UNIT)
    other_units = [u for u in units if u.unit_id != SLF_UNIT and u.active_to is None]
    shares = _source_shares_by_year(allocations, cfg)
    months = _months(cfg.window_start, cfg.window_end)
    postings: dict[date, list[Posting]] = {m: [] for m in months}
    # One voucher series for the whole export, drawn in this order: salaries and donations month by
    # month, then the activities, then ordinary operations (the sample must come out the same).
    voucher = iter(range(510_000, 100_000_000, 3))
    pay_totals: dict[tuple[date, str], Decimal] = {}
    for p in payroll:
        art = "1.5" if p.kind == "pension" else "1.1"
        pay_totals[(p.month, art)] = pay_totals.get((p.month, art), Decimal(0)) + p.amount
    for month in months:
        postings[month].extend(_salary_postings(month, shares[month.year], pay_totals, voucher, slf_cc))
        postings[month].extend(_donation_postings(month, allocations, voucher, slf_cc))
    for posting in _activity_postings(allocations, activities, voucher, slf_cc):
        postings[posting.posted.replace(day=1)].append(posting)
    for month in months:
        postings[month].extend(_operations_postings(cfg, rng, month, other_units, voucher))
    for month in months:
        postings[month].sort(key=lambda p: (p.posted, p.voucher))
    return postings


def _salary_postings(
    month: date,
    year_shares: dict[str, Decimal],
    pay_totals: dict[tuple[date, str], Decimal],
    voucher: Iterator[int],
    slf_cc: str,
) -> list[Posting]:
    """Programme salaries: one voucher per art, split over the non-APMF sources as allocated that year."""
    pay_day = _month_end(month) - timedelta(days=1)
    lines = []
    for art in ("1.1", "1.5"):
        total = pay_totals.get((month, art), Decimal(0))
        v = f"{next(voucher)}"
        for source, part in zip(year_shares, _split(total, list(year_shares.values())), strict=True):
            lines.append(
                Posting(
                    v,
                    pay_day,
                    "6.45.51",
                    art,
                    slf_cc,
                    "SLF",
                    "",
                    source,
                    part,
                    f"Løn {month.strftime('%m-%Y')} SLF",
                )
            )
    return lines


def _donation_postings(
    month: date, allocations: list[Allocation], voucher: Iterator[int], slf_cc: str
) -> list[Posting]:
    """The donation arrives as income (negative) in the month its tranche starts."""
    return [
        Posting(
            f"{next(voucher)}",
            month + timedelta(days=14),
            "6.45.51",
            "7.9",
            slf_cc,
            "SLF",
            "",
            APMF,
            -a.amount,
            "Indbetaling donation A.P. Møller Fonden",
        )
        for a in allocations
        if a.source == APMF and a.period_from.replace(day=1) == month
    ]


def _activity_postings(
    allocations: list[Allocation], activities: list[Activity], voucher: Iterator[int], slf_cc: str
) -> list[Posting]:
    """Competence activities are paid by the donation: venue and food, booked on the day held."""
    apmf_by_year: dict[int, Decimal] = {}
    for a in allocations:
        if a.source == APMF:
            apmf_by_year[a.period_from.year] = apmf_by_year.get(a.period_from.year, Decimal(0)) + a.amount
    per_year: dict[int, list[Activity]] = {}
    for act in activities:
        per_year.setdefault(act.held_on.year, []).append(act)
    lines = []
    for year, acts in per_year.items():
        budget = apmf_by_year.get(year, Decimal(0)) * Decimal("0.62")
        weights = [Decimal(a.participants + 40) for a in acts]
        for act, cost in zip(acts, _split(budget, weights), strict=True):
            function = "5.25.10" if act.target_group == "ressourcepersoner" else "3.22.01"
            v = f"{next(voucher)}"
            venue, food = _split(cost, [Decimal(7), Decimal(3)])
            for art, amount, text in (
                ("4.0", venue, f"Lokaler og oplægsholder, {act.title}"),
                ("2.2", food, "Forplejning – kaffe, frokost"),
            ):
                lines.append(
                    Posting(v, act.held_on, function, art, slf_cc, "SLF", act.activity_id, APMF, amount, text)
                )
    return lines


# Børn og Unge's ordinary operations: function by unit type, and the five kinds of line in turn.
_OPERATIONS_FUNCTION = {"skole": "3.22.01", "dagtilbud": "5.25.14", "fritidstilbud": "3.22.05"}
_OPERATIONS_LINES = [
    ("2.9", 1, "Undervisningsmaterialer"),
    ("4.0", 1, "Rengøring, faktura"),
    ("1.1", 1, "Løn vikarer"),
    ("7.2", -1, "Forældrebetaling – egenbetaling"),
    ("2.2", 1, "Fødevarer – køkken"),
]


def _operations_postings(
    cfg: SampleConfig, rng: random.Random, month: date, other_units: list[Unit], voucher: Iterator[int]
) -> list[Posting]:
    """Børn og Unge's ordinary operations on the same export: outside the programme."""
    lines = []
    for k in range(cfg.non_programme_lines_per_month):
        unit = other_units[rng.randrange(len(other_units))]
        function = _OPERATIONS_FUNCTION.get(unit.unit_type, "6.45.51")
        art, sign, text = _OPERATIONS_LINES[k % 5]
        amount = _kr(sign * rng.uniform(800, 240_000))
        lines.append(
            Posting(
                f"{next(voucher)}",
                month + timedelta(days=rng.randrange(27)),
                function,
                art,
                unit.cost_centre,
                "DRIFT" if k % 4 else "",
                "",
                "",
                amount,
                f"{text}, {unit.name}",
            )
        )
    return lines


# --- social-capital survey -----------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyUnit:
    unit_id: str
    respondents: list[list[int | None]]  # eight answers per respondent: sk1..sk4, slf1..slf4


def _respondent_index(items: list[int | None]) -> float | None:
    answered = [x for x in items if x is not None]
    return statistics.fmean(answered) * 4 if len(answered) >= 2 else None


def unit_scores(units: list[SurveyUnit]) -> list[tuple[float, float]]:
    """(social-capital index, SLF score) of every unit not suppressed, as the contract defines them."""
    points = []
    for u in units:
        counted = [
            (sk, slf)
            for r in u.respondents
            if (sk := _respondent_index(r[:4])) is not None and (slf := _respondent_index(r[4:])) is not None
        ]
        if len(counted) >= 5:
            points.append((statistics.fmean(c[0] for c in counted), statistics.fmean(c[1] for c in counted)))
    return points


def r_squared(points: list[tuple[float, float]]) -> float:
    return statistics.correlation([p[0] for p in points], [p[1] for p in points]) ** 2


def build_survey_year(cfg: SampleConfig, year: int, unit_ids: list[str], target: float) -> list[SurveyUnit]:
    """Survey answers whose unit-level R² lands on the target.

    All random draws are fixed first; only the spread of the units' SLF level around the line is
    tuned (bisection), so the answers stay plausible 0–4 integers with gaps and sparse respondents.
    """
    rng = random.Random(cfg.seed * 1000 + year)
    plan = []
    for i, unit_id in enumerate(unit_ids):
        n = rng.randrange(2, 5) if i < cfg.suppressed_units else rng.randrange(6, 26)
        level = rng.uniform(1.4, 3.5)
        unit_noise = rng.gauss(0, 1)
        people = [[rng.gauss(0, 0.45) for _ in range(9)] + [rng.random() for _ in range(8)] for _ in range(n)]
        plan.append((unit_id, level, unit_noise, people))

    def realise(spread: float) -> list[SurveyUnit]:
        result = []
        for unit_id, level, unit_noise, people in plan:
            slf_level = 0.3 + 0.9 * level + spread * unit_noise
            rows = []
            for k, p in enumerate(people):
                person = p[8]
                sk = [level + person + p[j] for j in range(4)]
                slf = [slf_level + person + p[4 + j] for j in range(4)]
                answers: list[int | None] = [min(4, max(0, round(x))) for x in sk + slf]
                for j in range(8):  # about one answer in twelve is left blank; the 2nd respondent skips most
                    if p[9 + j] < 0.08 or (k == 1 and j not in (0, 4)):
                        answers[j] = None
                rows.append(answers)
            result.append(SurveyUnit(unit_id, rows))
        return result

    lo, hi = 0.0, 3.0
    for _ in range(60):
        mid = (lo + hi) / 2
        r2 = r_squared(unit_scores(realise(mid)))
        if abs(r2 - target) < 0.002:
            return realise(mid)
        lo, hi = (mid, hi) if r2 > target else (lo, mid)
    raise ValueError(f"survey {year}: cannot reach R² {target} with this seed (last {r2:.3f})")


# --- writing the files ---------------------------------------------------------------------------


def write_sample_data(out_dir: Path, cfg: SampleConfig | None = None) -> dict[str, list[Path]]:
    """Write all six sources under ``out_dir/<source>/`` and return the files per source."""
    cfg = cfg or SampleConfig()
    rng = random.Random(cfg.seed)
    units = build_units()
    allocations = build_allocations(cfg)
    months = _months(cfg.window_start, cfg.window_end)
    staff = build_staff(cfg, len(months))
    payroll = build_payroll(staff, months)
    activities = build_activities(cfg, rng)
    postings = build_postings(cfg, rng, units, allocations, payroll, activities)
    written: dict[str, list[Path]] = {}

    def target(source: str, name: str) -> Path:
        path = out_dir / source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        written.setdefault(source, []).append(path)
        return path

    fmt.write_csv(
        target("enheder", "enheder.csv"),
        contract.ENHEDER,
        [
            [
                u.unit_id,
                u.name,
                u.unit_type,
                u.district,
                u.cost_centre,
                u.active_from.isoformat(),
                u.active_to.isoformat() if u.active_to else "",
            ]
            for u in units
        ],
    )
    fmt.write_csv(
        target("bevillinger", "bevillinger.csv"),
        contract.BEVILLINGER,
        [
            [
                a.allocation_id,
                a.source,
                fmt.dk_date(a.decided),
                fmt.dk_date(a.period_from),
                fmt.dk_date(a.period_to),
                fmt.dk_number(a.amount),
                a.case_no,
                a.remark,
            ]
            for a in allocations
        ],
    )
    for month, lines in postings.items():
        fmt.write_csv(
            target("posteringer", f"posteringer_{month:%Y-%m}.csv"),
            contract.POSTERINGER,
            [
                [
                    p.voucher,
                    fmt.dk_date(p.posted),
                    p.function,
                    "1",
                    p.art,
                    p.cost_centre,
                    p.project,
                    p.activity_id,
                    p.source,
                    fmt.dk_number(p.amount),
                    p.text,
                ]
                for p in lines
            ],
        )
    slf_cc = next(u.cost_centre for u in units if u.unit_id == SLF_UNIT)
    payroll_by_month: dict[date, list[PayLine]] = {m: [] for m in months}
    for p in payroll:
        payroll_by_month[p.month].append(p)
    for month in months:
        fmt.write_csv(
            target("loen", f"loen_{month:%Y-%m}.csv"),
            contract.LOEN,
            [
                [
                    p.employee.number,
                    p.employee.name,
                    ROLE_TITLES[p.employee.role],
                    p.employee.role,
                    fmt.dk_number(p.employee.fte, decimals=4, thousands=False),
                    f"{month:%Y-%m}",
                    p.kind,
                    fmt.dk_number(p.amount),
                    slf_cc,
                ]
                for p in payroll_by_month[month]
            ],
        )
    fmt.write_csv(
        target("aktiviteter", "aktiviteter.csv"),
        contract.AKTIVITETER,
        [
            [
                a.activity_id,
                a.activity_type,
                a.title,
                a.held_on.isoformat(),
                a.target_group,
                a.district,
                str(a.participants),
            ]
            for a in activities
        ],
    )
    surveyed = [u.unit_id for u in units if u.active_to is None]
    for year, target_r2 in sorted(cfg.survey_r_squared.items()):
        survey = build_survey_year(cfg, year, surveyed, target_r2)
        rows = [[u.unit_id, year, *answers] for u in survey for answers in u.respondents]
        fmt.write_xlsx(target("social_kapital", f"social_kapital_{year}.xlsx"), contract.SOCIAL_KAPITAL, rows)
    return written
