"""The simulated operator: plans, cells in location areas, and members with their whole life story.

Everything here is a pure function of ``OperatorConfig`` (seed included) and the simulated period, so two
builds with the same inputs are equal field for field; traffic generation (``traffic``) only adds per-day
randomness on top. A member's fate is decided up front (activation, plan change, churn date and kind), which
is what lets the traffic model make churners *look* like churners before they leave: their engagement
declines over ``churn_lead_days``, they go quiet for ``churn_inactive_days``, and most of them live in
drop-prone cells (bad coverage is the cause, more dropped calls the visible symptom).

Identifiers embed the seed (``S42-M0000123``), so runs with different seeds never share a stream or an
event id in one EventStoreDB, and a re-run of one seed addresses exactly the same streams.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

HOME_PLMN_ID = "00101"
"""ITU-T test network (MCC 001, MNC 01): never a real operator's IMSI range."""
CURRENCY = "EUR"

CellQuality = Literal["normal", "congested", "drop_prone"]
ChurnKind = Literal["port_out", "customer_request", "inactivity"]


@dataclass(frozen=True)
class OperatorConfig:
    """Size of the operator and every rate the traffic model uses, with sensible defaults.

    Rates are probabilities per opportunity (per call attempt, per answered call...) unless named per day
    or per week; ``churn_share`` is the share of members whose churn date falls inside the period.
    """

    seed: int = 42
    members: int = 2000
    cells: int = 200
    location_areas: int = 20
    prepaid_share: float = 0.6
    # cells
    congested_cell_share: float = 0.1
    drop_prone_cell_share: float = 0.1
    congestion_failure_rate: float = 0.10  # call attempts failing with Q.850 34 in a congested cell
    base_congestion_failure_rate: float = 0.005
    drop_rate: float = 0.01  # answered calls dropped in a normal cell
    drop_prone_drop_rate: float = 0.08
    # traffic, per member with average activity and full engagement
    calls_per_day: float = 4.0
    sms_per_day: float = 3.0
    data_sessions_per_day: float = 6.0
    topups_per_week: float = 1.5  # prepaid only
    answer_ratio: float = 0.80  # of attempts not failed by congestion
    busy_ratio: float = 0.08  # the rest is no answer
    mt_call_share: float = 0.4
    handover_rate: float = 0.2
    median_call_s: float = 75.0
    call_duration_sigma: float = 1.1
    sms_delivery_ratio: float = 0.95
    median_session_mb: float = 15.0
    session_volume_sigma: float = 1.6
    roaming_share: float = 0.02
    # lifecycle
    churn_share: float = 0.05
    churn_lead_days: float = 21.0
    churn_inactive_days: float = 3.0
    churner_bad_coverage_share: float = 0.7
    port_out_share: float = 0.6  # of churners
    new_member_share: float = 0.02
    plan_change_share: float = 0.03

    def __post_init__(self) -> None:
        shares = {
            name: getattr(self, name)
            for name in (
                "prepaid_share",
                "congested_cell_share",
                "drop_prone_cell_share",
                "congestion_failure_rate",
                "base_congestion_failure_rate",
                "drop_rate",
                "drop_prone_drop_rate",
                "answer_ratio",
                "busy_ratio",
                "mt_call_share",
                "handover_rate",
                "sms_delivery_ratio",
                "roaming_share",
                "churn_share",
                "churner_bad_coverage_share",
                "port_out_share",
                "new_member_share",
                "plan_change_share",
            )
        }
        for name, value in shares.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.answer_ratio + self.busy_ratio > 1.0:
            raise ValueError("answer_ratio + busy_ratio must not exceed 1 (the rest is no answer)")
        if self.congested_cell_share + self.drop_prone_cell_share > 1.0:
            raise ValueError("congested_cell_share + drop_prone_cell_share must not exceed 1")
        if self.members < 1 or self.cells < 1 or not 1 <= self.location_areas <= self.cells:
            raise ValueError("need members >= 1 and 1 <= location_areas <= cells")


@dataclass(frozen=True, slots=True)
class Plan:
    """A tariff plan; prices in micros of ``CURRENCY``."""

    plan_id: str
    plan_type: Literal["prepaid", "postpaid"]
    voice_micros_per_minute: int
    sms_micros: int
    data_micros_per_mb: int


PLANS: tuple[Plan, ...] = (
    Plan("PAYG-10", "prepaid", 100_000, 50_000, 10_000),
    Plan("PREPAID-SMART-20", "prepaid", 50_000, 30_000, 5_000),
    Plan("POSTPAID-30", "postpaid", 20_000, 10_000, 2_000),
    Plan("POSTPAID-UNLTD-50", "postpaid", 0, 0, 0),
)
PREPAID_PLANS = tuple(p for p in PLANS if p.plan_type == "prepaid")
POSTPAID_PLANS = tuple(p for p in PLANS if p.plan_type == "postpaid")


@dataclass(frozen=True, slots=True)
class Cell:
    index: int
    cell_id: str
    location_area_code: int
    rat_type: Literal["GERAN", "UTRAN", "EUTRAN", "NR"]
    quality: CellQuality
    congestion_failure_rate: float
    drop_rate: float


@dataclass(frozen=True, slots=True)
class Member:
    """A subscriber and everything decided about them for the whole period."""

    index: int
    member_id: str
    msisdn: str
    imsi: str
    imei: str
    plan: Plan
    home_cells: tuple[int, ...]  # indices into Operator.cells, most used first
    activity: float  # mean 1; scales every usage rate
    activated_at: datetime
    churn_at: datetime | None = None
    churn_kind: ChurnKind | None = None
    port_out_requested_at: datetime | None = None
    plan_change_at: datetime | None = None
    new_plan: Plan | None = None
    churn_lead_s: float = 0.0
    churn_inactive_s: float = 0.0

    def plan_at(self, when: datetime) -> Plan:
        if self.plan_change_at is not None and self.new_plan is not None and when >= self.plan_change_at:
            return self.new_plan
        return self.plan

    def active_at(self, when: datetime) -> bool:
        return self.activated_at <= when and (self.churn_at is None or when < self.churn_at)

    def engagement(self, when: datetime) -> float:
        """1.0 normally; for a churner it declines linearly over the lead window, then almost stops."""
        if self.churn_at is None:
            return 1.0
        left_s = (self.churn_at - when).total_seconds()
        if left_s <= self.churn_inactive_s:
            return 0.03
        decline_s = self.churn_lead_s - self.churn_inactive_s
        if left_s >= self.churn_lead_s or decline_s <= 0:
            return 1.0
        return 0.15 + 0.85 * (left_s - self.churn_inactive_s) / decline_s


@dataclass(frozen=True)
class Operator:
    config: OperatorConfig
    start: datetime
    end: datetime
    cells: tuple[Cell, ...]
    members: tuple[Member, ...]
    cells_by_lac: dict[int, tuple[int, ...]] = field(repr=False)

    @property
    def seed(self) -> int:
        return self.config.seed


def member_id_for(seed: int, index: int) -> str:
    return f"S{seed}-M{index:07d}"


def luhn_check_digit(digits: str) -> str:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            value -= 9 if value > 9 else 0
        total += value
    return str((10 - total % 10) % 10)


def _build_cells(config: OperatorConfig, rng: random.Random) -> tuple[Cell, ...]:
    count = config.cells
    qualities: list[CellQuality] = ["normal"] * count
    order = list(range(count))
    rng.shuffle(order)
    congested = round(count * config.congested_cell_share)
    drop_prone = round(count * config.drop_prone_cell_share)
    for i in order[:congested]:
        qualities[i] = "congested"
    for i in order[congested : congested + drop_prone]:
        qualities[i] = "drop_prone"
    cells = []
    for i in range(count):
        lac = 0x1000 + i % config.location_areas
        quality = qualities[i]
        congestion = (
            config.congestion_failure_rate if quality == "congested" else config.base_congestion_failure_rate
        )
        drop = config.drop_prone_drop_rate if quality == "drop_prone" else config.drop_rate
        rat = rng.choices(("GERAN", "UTRAN", "EUTRAN", "NR"), weights=(0.05, 0.15, 0.6, 0.2))[0]
        cells.append(
            Cell(
                index=i,
                cell_id=f"{HOME_PLMN_ID}-{lac:04x}-{i:05d}",
                location_area_code=lac,
                rat_type=rat,  # type: ignore[arg-type]
                quality=quality,
                congestion_failure_rate=min(1.0, congestion * rng.uniform(0.6, 1.4)),
                drop_rate=min(1.0, drop * rng.uniform(0.6, 1.4)),
            )
        )
    return tuple(cells)


def _home_cells(
    rng: random.Random, cells_by_lac: dict[int, tuple[int, ...]], drop_prone: list[int], bad_coverage: bool
) -> tuple[int, ...]:
    lac = rng.choice(sorted(cells_by_lac))
    local = list(cells_by_lac[lac])
    picked = rng.sample(local, min(3, len(local)))
    if bad_coverage and drop_prone:
        picked = [*rng.sample(drop_prone, min(2, len(drop_prone))), *picked[:1]]
    return tuple(picked)


def build_operator(config: OperatorConfig, start: datetime, days: float) -> Operator:
    """The operator over ``[start, start + days)``; deterministic for ``config`` (seed included)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC)")
    if days <= 0:
        raise ValueError(f"days must be positive, got {days}")
    start = start.astimezone(UTC)
    end = start + timedelta(days=days)
    period_s = (end - start).total_seconds()
    rng = random.Random(f"operator:{config.seed}")
    cells = _build_cells(config, rng)
    by_lac: dict[int, list[int]] = {}
    for cell in cells:
        by_lac.setdefault(cell.location_area_code, []).append(cell.index)
    cells_by_lac = {lac: tuple(ids) for lac, ids in by_lac.items()}
    drop_prone = [c.index for c in cells if c.quality == "drop_prone"]

    count = config.members
    churners = set(rng.sample(range(count), round(count * config.churn_share)))
    newcomers = set(rng.sample(range(count), round(count * config.new_member_share))) - churners
    changers = set(rng.sample(range(count), round(count * config.plan_change_share))) - churners
    members = []
    for i in range(count):
        mrng = random.Random(f"member:{config.seed}:{i}")
        plans = PREPAID_PLANS if mrng.random() < config.prepaid_share else POSTPAID_PLANS
        plan = mrng.choice(plans)
        churns = i in churners
        if i in newcomers:
            activated_at = start + timedelta(seconds=mrng.uniform(0, period_s * 0.8))
        else:
            activated_at = start - timedelta(days=mrng.uniform(30, 1500), seconds=mrng.uniform(0, 86400))
        churn_at = churn_kind = port_at = None
        if churns:
            churn_at = start + timedelta(seconds=mrng.uniform(0, period_s))
            if mrng.random() < config.port_out_share:
                churn_kind = "port_out"
                port_at = churn_at - timedelta(hours=mrng.uniform(2, 30))
            else:
                churn_kind = (
                    "inactivity"
                    if plan.plan_type == "prepaid" and mrng.random() < 0.5
                    else "customer_request"
                )
        change_at = new_plan = None
        if i in changers:
            change_at = max(activated_at, start) + timedelta(seconds=mrng.uniform(0, period_s * 0.5))
            new_plan = mrng.choice([p for p in PLANS if p.plan_id != plan.plan_id])
            if change_at >= end:
                change_at = new_plan = None
        tac = f"35{mrng.randrange(10**6):06d}"
        serial = f"{i % 10**6:06d}"
        members.append(
            Member(
                index=i,
                member_id=member_id_for(config.seed, i),
                msisdn=f"4470{(config.seed * 7919 + i) % 10**8:08d}",
                imsi=f"{HOME_PLMN_ID}{(config.seed % 100):02d}{i:08d}",
                imei=tac + serial + luhn_check_digit(tac + serial),
                plan=plan,
                home_cells=_home_cells(
                    mrng,
                    cells_by_lac,
                    drop_prone,
                    churns and mrng.random() < config.churner_bad_coverage_share,
                ),
                activity=mrng.lognormvariate(-0.125, 0.5),  # mean exp(mu + sigma^2/2) = 1
                activated_at=activated_at,
                churn_at=churn_at,
                churn_kind=churn_kind,  # type: ignore[arg-type]
                port_out_requested_at=port_at,
                plan_change_at=change_at,
                new_plan=new_plan,
                churn_lead_s=config.churn_lead_days * 86400,
                churn_inactive_s=config.churn_inactive_days * 86400,
            )
        )
    return Operator(config, start, end, cells, tuple(members), cells_by_lac)
