"""The simulated operator: plans, cells in location areas, and members with their whole life story.

Everything here is a pure function of ``OperatorConfig`` (seed included) and the simulated period, so two
builds with the same inputs are equal field for field; traffic generation (``traffic``) only adds per-day
randomness on top. A member's fate is decided up front (activation, plan change, when they leave, their
dips), which is what lets the traffic model make leavers *look* like leavers before they go: most wind
down over weeks (``churn_lead_days_min`` to ``_max``), some go quiet at the end, a quarter leave without
warning, while members who stay have dips of their own (false alarms). Churn is a monthly hazard per plan
type, calibrated with every other default to the published figures cited in ``README.md``.

Identifiers embed the seed (``S42-M0000123``), so runs with different seeds never share a stream or an
event id in one EventStoreDB, and a re-run of one seed addresses exactly the same streams.
"""

from __future__ import annotations

import math
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
    """Size of the operator and every rate the traffic model uses; defaults calibrated to published figures.

    ``README.md`` ("Calibration") cites the source of each target. Rates are probabilities per opportunity
    (per call attempt, per answered call...) unless named per day, per week or per month. Churn is a
    monthly hazard per plan type, so the number of churners grows with the period and the member count.
    """

    seed: int = 42
    members: int = 2000
    cells: int = 200
    location_areas: int = 20
    prepaid_share: float = 0.6
    # cells: blocking (Q.850 34) and drops
    congested_cell_share: float = 0.1
    drop_prone_cell_share: float = 0.1
    congestion_failure_rate: float = 0.06  # call attempts failing with Q.850 34 in a congested cell
    base_congestion_failure_rate: float = 0.003
    drop_rate: float = 0.006  # answered calls dropped in a normal cell
    drop_prone_drop_rate: float = 0.05
    # traffic, per member with average activity and full engagement, before the plan's usage factors
    calls_per_day: float = 6.0  # call legs: originated and terminated
    sms_per_day: float = 1.5
    data_sessions_per_day: float = 3.0
    answer_ratio: float = 0.64  # of attempts not failed by congestion
    busy_ratio: float = 0.07  # Q.850 17
    absent_ratio: float = 0.08  # Q.850 20, the called party unreachable; the rest is no answer (19)
    rejected_ratio: float = 0.03  # Q.850 21, the called party rejected the call
    mt_call_share: float = 0.45
    handover_rate: float = 0.2
    median_call_s: float = 90.0  # log-normal: mean = median * exp(sigma^2 / 2), about 148 s
    call_duration_sigma: float = 1.0
    sms_delivery_ratio: float = 0.97
    median_session_mb: float = 28.0  # log-normal: mean about 100 MB a session
    session_volume_sigma: float = 1.3
    roaming_share: float = 0.02
    daily_noise_sigma: float = 0.35  # log-normal day-to-day swing of a member's usage
    # prepaid accounts
    max_opening_balance_eur: float = 12.0
    topup_delay_days: float = 1.0  # mean wait between running dry and topping up, at full engagement
    low_balance_eur: float = 1.0  # a member tops up once the balance is below this
    # lifecycle: churn hazards per month, wind-down and false alarms
    postpaid_monthly_churn: float = 0.009
    prepaid_monthly_churn: float = 0.028
    churn_lead_days_min: float = 14.0
    churn_lead_days_max: float = 35.0
    sudden_churn_share: float = 0.25  # churners who leave with no wind-down
    churn_inactive_days_max: float = 4.0
    churner_bad_coverage_share: float = 0.35
    bad_coverage_share: float = 0.08  # of members who stay
    monthly_dip_share: float = 0.08  # members who stay but dip, per month (false alarms)
    port_out_share: float = 0.6  # of churners
    churn_share: float | None = None  # if set: exactly this share churns inside the period (short tests)
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
                "absent_ratio",
                "rejected_ratio",
                "mt_call_share",
                "handover_rate",
                "sms_delivery_ratio",
                "roaming_share",
                "postpaid_monthly_churn",
                "prepaid_monthly_churn",
                "sudden_churn_share",
                "churner_bad_coverage_share",
                "bad_coverage_share",
                "monthly_dip_share",
                "port_out_share",
                "new_member_share",
                "plan_change_share",
            )
        }
        if self.churn_share is not None:
            shares["churn_share"] = self.churn_share
        for name, value in shares.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.answer_ratio + self.busy_ratio + self.absent_ratio + self.rejected_ratio > 1.0:
            raise ValueError(
                "answer_ratio + busy_ratio + absent_ratio + rejected_ratio must not exceed 1 "
                "(the rest is no answer)"
            )
        if not 0 <= self.churn_lead_days_min <= self.churn_lead_days_max:
            raise ValueError("need 0 <= churn_lead_days_min <= churn_lead_days_max")
        if self.congested_cell_share + self.drop_prone_cell_share > 1.0:
            raise ValueError("congested_cell_share + drop_prone_cell_share must not exceed 1")
        if self.members < 1 or self.cells < 1 or not 1 <= self.location_areas <= self.cells:
            raise ValueError("need members >= 1 and 1 <= location_areas <= cells")


@dataclass(frozen=True, slots=True)
class Plan:
    """A tariff plan; prices in micros of ``CURRENCY``.

    Prepaid plans charge per use from the balance (no fee); postpaid plans charge a monthly fee on the
    member's billing day plus any per-use prices. The factors scale a member's call and data appetite
    (pay-as-you-go users call less and use Wi-Fi more; unlimited users stream).
    """

    plan_id: str
    plan_type: Literal["prepaid", "postpaid"]
    voice_micros_per_minute: int
    sms_micros: int
    data_micros_per_mb: int
    monthly_fee_micros: int = 0
    voice_factor: float = 1.0
    data_factor: float = 1.0


PLANS: tuple[Plan, ...] = (
    Plan("PAYG-10", "prepaid", 50_000, 50_000, 4_000, voice_factor=0.8, data_factor=0.25),
    Plan("PREPAID-SMART-20", "prepaid", 30_000, 30_000, 2_000, voice_factor=0.8, data_factor=0.6),
    Plan("POSTPAID-30", "postpaid", 20_000, 20_000, 500, monthly_fee_micros=15_000_000),
    Plan("POSTPAID-UNLTD-50", "postpaid", 0, 0, 0, monthly_fee_micros=30_000_000, data_factor=1.8),
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
class Dip:
    """A spell of low usage of a member who stays (a holiday, a second SIM): the churn model's false alarm."""

    start: datetime
    end: datetime
    depth: float  # engagement at the bottom of the dip

    def level(self, when: datetime) -> float:
        if not self.start <= when < self.end:
            return 1.0
        ramp_s = min(3 * 86400.0, (self.end - self.start).total_seconds() / 2)
        edge_s = min((when - self.start).total_seconds(), (self.end - when).total_seconds())
        return 1.0 - (1.0 - self.depth) * min(1.0, edge_s / ramp_s)


@dataclass(frozen=True, slots=True)
class Member:
    """A subscriber and everything decided about them for the whole period.

    ``leaves_at`` is when the member will leave, possibly after the period (their wind-down may already
    show); ``churn_at`` is set only when that falls inside the period (a deactivation event is written).
    """

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
    leaves_at: datetime | None = None
    churn_lead_s: float = 0.0
    churn_inactive_s: float = 0.0
    churn_floor: float = 1.0  # engagement at the end of the wind-down
    dips: tuple[Dip, ...] = ()
    opening_balance_micros: int = 0  # prepaid balance at the start of the period
    billing_day: int = 1  # day of the month the postpaid fee is charged (1..28)

    def plan_at(self, when: datetime) -> Plan:
        if self.plan_change_at is not None and self.new_plan is not None and when >= self.plan_change_at:
            return self.new_plan
        return self.plan

    def active_at(self, when: datetime) -> bool:
        return self.activated_at <= when and (self.churn_at is None or when < self.churn_at)

    def engagement(self, when: datetime) -> float:
        """1.0 normally, lower in a dip; a leaver's declines linearly over the lead window to
        ``churn_floor``, then almost stops for the last ``churn_inactive_s``."""
        level = 1.0
        for dip in self.dips:
            level *= dip.level(when)
        if self.leaves_at is None:
            return level
        left_s = (self.leaves_at - when).total_seconds()
        if left_s <= self.churn_inactive_s:
            return level * 0.2 * self.churn_floor
        decline_s = self.churn_lead_s - self.churn_inactive_s
        if left_s >= self.churn_lead_s or decline_s <= 0:
            return level
        progress = (left_s - self.churn_inactive_s) / decline_s
        return level * (self.churn_floor + (1 - self.churn_floor) * progress)


@dataclass(frozen=True)
class Operator:
    config: OperatorConfig
    start: datetime
    end: datetime
    cells: tuple[Cell, ...]
    members: tuple[Member, ...]
    cells_by_lac: dict[int, tuple[int, ...]] = field(repr=False)
    ledger: dict[tuple[int, int], object] = field(default_factory=dict, repr=False, compare=False)
    """Memo of each prepaid account's state at the start of (member index, day), filled by ``traffic``.

    A pure cache: a day's records depend on the balance carried from the day before, and any day asked
    for alone is computed from the days before it, so results never depend on the order of requests."""

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


def monthly_to_daily(monthly: float) -> float:
    """The constant daily hazard that compounds to ``monthly`` over 30 days."""
    return -math.log(1.0 - monthly) / 30.0 if monthly < 1.0 else math.inf


def _fate(
    config: OperatorConfig,
    mrng: random.Random,
    plan: Plan,
    start: datetime,
    end: datetime,
    forced: set[int] | None,
    index: int,
) -> tuple[datetime | None, float, float, float]:
    """When the member leaves (possibly after ``end``), the wind-down lead, the silent tail, the floor.

    Leaving is a constant monthly hazard by plan type (memoryless), drawn from the period start; dates up
    to the longest lead past the end are kept, so members still in their wind-down at the end exist too.
    """
    period_s = (end - start).total_seconds()
    if forced is not None:
        leaves_at = start + timedelta(seconds=mrng.uniform(0, period_s)) if index in forced else None
    else:
        prepaid = plan.plan_type == "prepaid"
        monthly = config.prepaid_monthly_churn if prepaid else config.postpaid_monthly_churn
        daily = monthly_to_daily(monthly)
        wait_days = mrng.expovariate(daily) if daily > 0 else math.inf
        leaves_at = None
        if wait_days < period_s / 86400 + config.churn_lead_days_max:
            leaves_at = start + timedelta(days=wait_days)
    if leaves_at is None:
        return None, 0.0, 0.0, 1.0
    if mrng.random() < config.sudden_churn_share:
        return leaves_at, 0.0, 0.0, 1.0
    lead_s = mrng.uniform(config.churn_lead_days_min, config.churn_lead_days_max) * 86400
    inactive_s = mrng.uniform(0, config.churn_inactive_days_max) * 86400
    return leaves_at, lead_s, min(inactive_s, lead_s), mrng.uniform(0.1, 0.5)


def _dips(config: OperatorConfig, mrng: random.Random, start: datetime, end: datetime) -> tuple[Dip, ...]:
    """Poisson spells of low usage (``monthly_dip_share`` a month) over the period and 3 weeks before it."""
    dips = []
    t = start - timedelta(days=21)
    rate = config.monthly_dip_share / 30.0
    while rate > 0:
        t += timedelta(days=mrng.expovariate(rate))
        if t >= end:
            break
        length = timedelta(days=mrng.uniform(7, 21))
        dips.append(Dip(t, t + length, mrng.uniform(0.15, 0.6)))
    return tuple(dips)


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
    forced = None
    if config.churn_share is not None:
        forced = set(rng.sample(range(count), round(count * config.churn_share)))
    newcomers = set(rng.sample(range(count), round(count * config.new_member_share))) - (forced or set())
    changers = set(rng.sample(range(count), round(count * config.plan_change_share)))
    members = []
    for i in range(count):
        mrng = random.Random(f"member:{config.seed}:{i}")
        plans = PREPAID_PLANS if mrng.random() < config.prepaid_share else POSTPAID_PLANS
        plan = mrng.choice(plans)
        if i in newcomers:
            activated_at = start + timedelta(seconds=mrng.uniform(0, period_s * 0.8))
        else:
            activated_at = start - timedelta(days=mrng.uniform(30, 1500), seconds=mrng.uniform(0, 86400))
        fate = _fate(config, mrng, plan, start, end, forced, i)
        leaves_at, lead_s, inactive_s, floor = fate
        if leaves_at is not None and leaves_at <= activated_at:
            leaves_at, lead_s, inactive_s, floor = None, 0.0, 0.0, 1.0
        churn_at = leaves_at if leaves_at is not None and leaves_at < end else None
        churn_kind = port_at = None
        if churn_at is not None:
            if mrng.random() < config.port_out_share:
                churn_kind = "port_out"
                port_at = max(activated_at, churn_at - timedelta(hours=mrng.uniform(2, 30)))
            else:
                churn_kind = (
                    "inactivity"
                    if plan.plan_type == "prepaid" and mrng.random() < 0.5
                    else "customer_request"
                )
        change_at = new_plan = None
        if i in changers and churn_at is None:
            change_at = max(activated_at, start) + timedelta(seconds=mrng.uniform(0, period_s * 0.5))
            new_plan = mrng.choice([p for p in PLANS if p.plan_id != plan.plan_id])
            if change_at >= end:
                change_at = new_plan = None
        bad_share = config.churner_bad_coverage_share if leaves_at is not None else config.bad_coverage_share
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
                home_cells=_home_cells(mrng, cells_by_lac, drop_prone, mrng.random() < bad_share),
                activity=mrng.lognormvariate(-0.125, 0.5),  # mean exp(mu + sigma^2/2) = 1
                activated_at=activated_at,
                churn_at=churn_at,
                churn_kind=churn_kind,  # type: ignore[arg-type]
                port_out_requested_at=port_at,
                plan_change_at=change_at,
                new_plan=new_plan,
                leaves_at=leaves_at,
                churn_lead_s=lead_s,
                churn_inactive_s=inactive_s,
                churn_floor=floor,
                dips=_dips(config, mrng, start, end),
                opening_balance_micros=int(round(mrng.uniform(0, config.max_opening_balance_eur) * 1e6, -4)),
                billing_day=min(activated_at.day, 28),
            )
        )
    return Operator(config, start, end, cells, tuple(members), cells_by_lac)
