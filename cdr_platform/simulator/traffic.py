"""Seeded generation of what members do: calls, SMS, data sessions, top-ups and lifecycle changes.

A member-day is generated from its own random stream (``seed:member:day``), so the result does not depend
on how many members or days are generated, in what order, or in how many processes: the same seed always
yields the same records. A prepaid member's day also depends on the balance carried from the day before:
usage the balance cannot pay for its first unit of is refused (a ``RefusalRecord``), usage it pays in
part is cut short, and running low makes the member top up after a delay that grows as engagement falls.
Balances are debited when usage starts, so they never go below zero.

Arrivals are non-homogeneous Poisson processes (thinning against daily and weekly curves, in UTC) scaled by
the member's activity, the plan's appetite, a day-to-day noise and the member's engagement; call durations
are log-normal (heavy right tail), data volumes too. Records are intents with their outcome decided;
``builders`` turns each into the events a real network would emit.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from cdr_platform.simulator.model import Cell, ChurnKind, Member, Operator, OperatorConfig, Plan

CallOutcome = Literal["completed", "dropped", "busy", "no_answer", "absent", "rejected", "congestion"]
CAUSE_CONGESTION = 34  # no_circuit_channel_available
CAUSE_BUSY = 17  # user_busy
CAUSE_NO_ANSWER = 19  # no_answer_from_user
CAUSE_OF_OUTCOME: dict[str, int] = {
    "congestion": 34,
    "busy": 17,
    "no_answer": 19,
    "absent": 20,
    "rejected": 21,
}
SMS_FAILURE_CAUSES = (
    "absent_subscriber",
    "memory_capacity_exceeded",
    "validity_period_expired",
    "network_failure",
)
SMS_FAILURE_WEIGHTS = (0.6, 0.1, 0.15, 0.15)
TOPUP_AMOUNTS_MICROS = (5_000_000, 10_000_000, 15_000_000, 20_000_000, 30_000_000)
TOPUP_AMOUNT_WEIGHTS = (0.25, 0.4, 0.1, 0.2, 0.05)
TOPUP_CHANNELS = ("voucher", "card", "bank_transfer", "retail", "app", "auto_topup")
TOPUP_CHANNEL_WEIGHTS = (0.15, 0.25, 0.05, 0.15, 0.3, 0.1)
SESSION_TIME_LIMIT_S = 3600.0
MAX_CALL_S = 4 * 3600.0


def _normalised(weights: tuple[float, ...]) -> tuple[float, ...]:
    mean = sum(weights) / len(weights)
    return tuple(w / mean for w in weights)


# Hour-of-day load (UTC), mean 1: quiet nights, a late-morning and an early-evening peak for voice,
# data heavier in the evening.
VOICE_BY_HOUR = _normalised(
    (0.15, 0.08, 0.05, 0.05, 0.08, 0.2, 0.5, 1.0, 1.4, 1.6, 1.7, 1.7, 1.5, 1.5, 1.5, 1.5, 1.6, 1.8, 1.9,
     1.6, 1.3, 1.0, 0.6, 0.3)
)  # fmt: skip
DATA_BY_HOUR = _normalised(
    (0.4, 0.25, 0.15, 0.12, 0.12, 0.2, 0.5, 0.9, 1.1, 1.1, 1.1, 1.2, 1.3, 1.2, 1.1, 1.1, 1.2, 1.4, 1.6,
     1.8, 1.9, 1.8, 1.4, 0.8)
)  # fmt: skip
VOICE_BY_WEEKDAY = (1.0, 1.0, 1.0, 1.0, 1.05, 0.8, 0.7)  # Monday first
DATA_BY_WEEKDAY = (1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 1.1)


@dataclass(frozen=True, slots=True)
class CallRecord:
    call_id: str
    member: Member
    plan: Plan
    record_type: Literal["mo_call_record", "mt_call_record"]
    other_party: str
    first_cell: Cell
    last_cell: Cell
    roaming: bool
    attempted_at: datetime
    outcome: CallOutcome
    answered_at: datetime | None
    released_at: datetime
    duration_s: float  # answer to release; 0 when never answered
    charge_micros: int
    credit_limited: bool = False  # released by the OCS when the prepaid balance ran out

    @property
    def correlation_id(self) -> str:
        return self.call_id

    @property
    def completed_at(self) -> datetime:
        """When mediation has the whole record: release, plus the rating for answered calls."""
        return self.released_at + timedelta(seconds=1) if self.answered_at else self.released_at


@dataclass(frozen=True, slots=True)
class SmsRecord:
    sms_id: str
    member: Member
    plan: Plan
    destination: str
    cell: Cell
    roaming: bool
    message_reference: int
    submitted_at: datetime
    delivered: bool
    result_at: datetime
    failure_cause: str | None
    charge_micros: int

    @property
    def correlation_id(self) -> str:
        return self.sms_id

    @property
    def completed_at(self) -> datetime:
        return max(self.result_at, self.submitted_at + timedelta(seconds=1))


@dataclass(frozen=True, slots=True)
class DataSessionRecord:
    session_id: str
    member: Member
    plan: Plan
    cell: Cell
    roaming: bool
    started_at: datetime
    ended_at: datetime
    uplink_bytes: int
    downlink_bytes: int
    charging_id: int
    cause_for_rec_closing: Literal["normal_release", "time_limit", "volume_limit"]
    charge_micros: int

    @property
    def correlation_id(self) -> str:
        return self.session_id

    @property
    def duration_s(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def completed_at(self) -> datetime:
        return self.ended_at + timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class TopupRecord:
    topup_id: str
    member: Member
    at: datetime
    amount_micros: int
    channel: str

    @property
    def correlation_id(self) -> str:
        return self.topup_id

    @property
    def completed_at(self) -> datetime:
        return self.at


@dataclass(frozen=True, slots=True)
class RefusalRecord:
    """Usage the OCS refused: the prepaid balance could not pay for its first unit. Nothing was used."""

    refusal_id: str  # the id the call, SMS or session would have had
    member: Member
    plan: Plan
    usage_kind: Literal["voice", "sms", "data"]
    at: datetime
    balance_micros: int
    required_micros: int

    @property
    def correlation_id(self) -> str:
        return self.refusal_id

    @property
    def completed_at(self) -> datetime:
        return self.at


@dataclass(frozen=True, slots=True)
class PlanFeeRecord:
    """A postpaid plan's monthly fee, charged on the member's billing day for the month that starts then."""

    fee_id: str
    member: Member
    plan: Plan
    at: datetime
    period_start: date
    period_end: date
    amount_micros: int

    @property
    def correlation_id(self) -> str:
        return self.fee_id

    @property
    def completed_at(self) -> datetime:
        return self.at


@dataclass(frozen=True, slots=True)
class Account:
    """A prepaid account carried from one day to the next: its balance and a top-up already decided on."""

    balance_micros: int
    topup_due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LifecycleRecord:
    """One member lifecycle change (activation, plan change, port-out request, deactivation)."""

    kind: Literal["member_activated", "plan_changed", "port_out_requested", "member_deactivated"]
    member: Member
    at: datetime
    sequence: int  # position among the member's lifecycle events
    churn_kind: ChurnKind | None = None

    @property
    def correlation_id(self) -> str:
        return self.member.member_id

    @property
    def completed_at(self) -> datetime:
        return self.at


UsageRecord = CallRecord | SmsRecord | DataSessionRecord | TopupRecord | RefusalRecord | PlanFeeRecord
Record = UsageRecord | LifecycleRecord


def voice_charge(plan: Plan, record_type: str, duration_s: float, roaming: bool) -> int:
    """Per started minute for outgoing calls; incoming calls are free at home, charged when roaming."""
    if record_type == "mt_call_record" and not roaming:
        return 0
    minutes = math.ceil(duration_s / 60)
    return minutes * plan.voice_micros_per_minute * (3 if roaming else 1)


def sms_charge(plan: Plan, roaming: bool) -> int:
    return plan.sms_micros * (3 if roaming else 1)


def data_charge(plan: Plan, total_bytes: int, roaming: bool) -> int:
    return math.ceil(total_bytes / 1_000_000) * plan.data_micros_per_mb * (5 if roaming else 1)


def voice_unit_price(plan: Plan, record_type: str, roaming: bool) -> int:
    """The price of a call's first minute (what the OCS must see in the balance to let it through)."""
    return voice_charge(plan, record_type, 60.0, roaming)


def add_month(day: date) -> date:
    """The same day of the next month (billing days are 1..28, so it always exists)."""
    return date(day.year + day.month // 12, day.month % 12 + 1, day.day)


def lifecycle_records(member: Member) -> list[LifecycleRecord]:
    """The member's lifecycle events in time order (activation may predate the period)."""
    steps: list[tuple[str, datetime]] = [("member_activated", member.activated_at)]
    if member.plan_change_at is not None:
        steps.append(("plan_changed", member.plan_change_at))
    if member.port_out_requested_at is not None:
        steps.append(("port_out_requested", max(member.port_out_requested_at, member.activated_at)))
    if member.churn_at is not None:
        steps.append(("member_deactivated", member.churn_at))
    steps.sort(key=lambda step: step[1])
    return [
        LifecycleRecord(kind, member, at, n, member.churn_kind)  # type: ignore[arg-type]
        for n, (kind, at) in enumerate(steps)
    ]


class _MemberDay:
    """Random draws for one member on one day; a fresh instance per (seed, member, day)."""

    def __init__(self, operator: Operator, member: Member, day: int) -> None:
        self.operator = operator
        self.config: OperatorConfig = operator.config
        self.member = member
        self.day = day
        self.rng = random.Random(f"traffic:{operator.seed}:{member.index}:{day}")
        self.day_start = operator.start + timedelta(days=day)
        self.date_tag = self.day_start.strftime("%Y%m%d")
        window_start = max(self.day_start, member.activated_at)
        window_end = min(self.day_start + timedelta(days=1), operator.end)
        if member.churn_at is not None:
            window_end = min(window_end, member.churn_at)
        self.window = (window_start, window_end)
        sigma = self.config.daily_noise_sigma
        self.noise = self.rng.lognormvariate(-sigma * sigma / 2, sigma) if sigma > 0 else 1.0
        self.day_plan = member.plan_at(window_start)

    def arrivals(
        self, per_day: float, by_hour: tuple[float, ...], by_weekday: tuple[float, ...]
    ) -> Iterator[datetime]:
        """Event times by thinning a homogeneous Poisson process at the peak rate."""
        begin, end = self.window
        if end <= begin or per_day <= 0:
            return
        peak = max(by_hour)
        rate_s = per_day * self.noise * self.member.activity * peak / 86400
        rng, member = self.rng, self.member
        t = begin
        while True:
            t = t + timedelta(seconds=rng.expovariate(rate_s))
            if t >= end:
                return
            accept = by_hour[t.hour] * by_weekday[t.weekday()] / peak * member.engagement(t)
            if rng.random() < accept:
                yield t

    def pick_cell(self) -> Cell:
        cells, rng = self.operator.cells, self.rng
        if rng.random() < 0.1:
            return cells[rng.randrange(len(cells))]
        home = self.member.home_cells
        return cells[home[min(int(rng.expovariate(1.2)), len(home) - 1)]]

    def other_number(self) -> str:
        return f"44{self.rng.randrange(7_000_000_000, 7_999_999_999)}"

    def calls(self) -> Iterator[CallRecord]:
        config, rng, member = self.config, self.rng, self.member
        per_day = config.calls_per_day * self.day_plan.voice_factor
        times = self.arrivals(per_day, VOICE_BY_HOUR, VOICE_BY_WEEKDAY)
        busy = config.answer_ratio + config.busy_ratio
        absent = busy + config.absent_ratio
        rejected = absent + config.rejected_ratio
        for n, at in enumerate(times):
            cell = self.pick_cell()
            record_type = "mt_call_record" if rng.random() < config.mt_call_share else "mo_call_record"
            roaming = rng.random() < config.roaming_share
            plan = member.plan_at(at)
            answered_at = None
            last_cell = cell
            duration = 0.0
            if rng.random() < cell.congestion_failure_rate:
                outcome: CallOutcome = "congestion"
                released = at + timedelta(seconds=rng.uniform(0.5, 3))
            else:
                u = rng.random()
                if u < config.answer_ratio:
                    answered_at = at + timedelta(seconds=rng.uniform(3, 20))
                    duration = min(
                        MAX_CALL_S,
                        rng.lognormvariate(math.log(config.median_call_s), config.call_duration_sigma),
                    )
                    if rng.random() < config.handover_rate:
                        lac_cells = self.operator.cells_by_lac[cell.location_area_code]
                        last_cell = self.operator.cells[rng.choice(lac_cells)]
                    if rng.random() < last_cell.drop_rate:
                        outcome = "dropped"
                        duration *= rng.uniform(0.05, 1.0)
                    else:
                        outcome = "completed"
                    duration = round(duration, 3)
                    released = answered_at + timedelta(seconds=duration)
                elif u < busy:
                    outcome = "busy"
                    released = at + timedelta(seconds=rng.uniform(2, 8))
                elif u < absent:
                    outcome = "absent"
                    released = at + timedelta(seconds=rng.uniform(3, 10))
                elif u < rejected:
                    outcome = "rejected"
                    released = at + timedelta(seconds=rng.uniform(4, 20))
                else:
                    outcome = "no_answer"
                    released = at + timedelta(seconds=rng.uniform(20, 45))
            charge = voice_charge(plan, record_type, duration, roaming) if answered_at else 0
            yield CallRecord(
                call_id=f"{member.member_id}-{self.date_tag}-C{n:03d}",
                member=member,
                plan=plan,
                record_type=record_type,  # type: ignore[arg-type]
                other_party=self.other_number(),
                first_cell=cell,
                last_cell=last_cell,
                roaming=roaming,
                attempted_at=at,
                outcome=outcome,
                answered_at=answered_at,
                released_at=released,
                duration_s=duration,
                charge_micros=charge,
            )

    def sms(self) -> Iterator[SmsRecord]:
        config, rng, member = self.config, self.rng, self.member
        per_day = config.sms_per_day * self.day_plan.voice_factor
        for n, at in enumerate(self.arrivals(per_day, VOICE_BY_HOUR, VOICE_BY_WEEKDAY)):
            delivered = rng.random() < config.sms_delivery_ratio
            roaming = rng.random() < config.roaming_share
            plan = member.plan_at(at)
            yield SmsRecord(
                sms_id=f"{member.member_id}-{self.date_tag}-S{n:03d}",
                member=member,
                plan=plan,
                destination=self.other_number(),
                cell=self.pick_cell(),
                roaming=roaming,
                message_reference=n % 256,
                submitted_at=at,
                delivered=delivered,
                result_at=at + timedelta(seconds=rng.uniform(1, 20) if delivered else rng.uniform(60, 3600)),
                failure_cause=None if delivered else rng.choices(SMS_FAILURE_CAUSES, SMS_FAILURE_WEIGHTS)[0],
                charge_micros=sms_charge(plan, roaming),
            )

    def data_sessions(self) -> Iterator[DataSessionRecord]:
        config, rng, member = self.config, self.rng, self.member
        per_day = config.data_sessions_per_day * self.day_plan.data_factor
        for n, at in enumerate(self.arrivals(per_day, DATA_BY_HOUR, DATA_BY_WEEKDAY)):
            duration = rng.lognormvariate(math.log(600), 1.0)
            cause = "time_limit" if duration >= SESSION_TIME_LIMIT_S else "normal_release"
            duration = round(min(duration, SESSION_TIME_LIMIT_S), 3)
            downlink = int(
                rng.lognormvariate(math.log(config.median_session_mb * 1e6), config.session_volume_sigma)
            )
            uplink = int(downlink * rng.uniform(0.03, 0.2))
            roaming = rng.random() < config.roaming_share
            plan = member.plan_at(at)
            session_id = f"{member.member_id}-{self.date_tag}-D{n:03d}"
            yield DataSessionRecord(
                session_id=session_id,
                member=member,
                plan=plan,
                cell=self.pick_cell(),
                roaming=roaming,
                started_at=at,
                ended_at=at + timedelta(seconds=duration),
                uplink_bytes=uplink,
                downlink_bytes=downlink,
                charging_id=rng.getrandbits(32),
                cause_for_rec_closing=cause,  # type: ignore[arg-type]
                charge_micros=data_charge(plan, uplink + downlink, roaming),
            )

    def plan_fee(self) -> PlanFeeRecord | None:
        """The monthly fee, on the billing day (or at activation on it), if the plan then is postpaid."""
        member = self.member
        begin, end = self.window
        if end <= begin or self.day_start.day != member.billing_day:
            return None
        at = max(
            self.day_start + timedelta(hours=2, minutes=member.index % 120), begin + timedelta(minutes=1)
        )
        plan = member.plan_at(at)
        if at >= end or plan.plan_type != "postpaid" or plan.monthly_fee_micros <= 0:
            return None
        start = at.date()
        return PlanFeeRecord(
            fee_id=f"{member.member_id}-{self.date_tag}-F",
            member=member,
            plan=plan,
            at=at,
            period_start=start,
            period_end=add_month(start),
            amount_micros=plan.monthly_fee_micros,
        )

    def settle(self, usage: list[CallRecord | SmsRecord | DataSessionRecord], account: Account) -> tuple[
        list[UsageRecord], Account
    ]:  # fmt: skip
        """Pass the day's usage through the prepaid account in start order: refuse, cut short or debit,
        and top up when due. Postpaid usage passes untouched."""
        out: list[UsageRecord] = []
        balance, due = account.balance_micros, account.topup_due_at
        begin, end = self.window
        topups = 0

        def top_up_until(when: datetime) -> None:
            nonlocal balance, due, topups
            if due is not None and due <= when and begin <= due < end:
                amount = self.rng.choices(TOPUP_AMOUNTS_MICROS, TOPUP_AMOUNT_WEIGHTS)[0]
                channel = self.rng.choices(TOPUP_CHANNELS, TOPUP_CHANNEL_WEIGHTS)[0]
                out.append(
                    TopupRecord(f"{self.member.member_id}-{self.date_tag}-T{topups:02d}", self.member, due,
                                amount, channel)
                )  # fmt: skip
                topups += 1
                balance += amount
                due = None

        def plan_top_up(when: datetime) -> None:
            nonlocal due
            if due is None and balance < self.config.low_balance_eur * 1e6:
                mean_days = self.config.topup_delay_days / max(self.member.engagement(when), 0.02)
                due = when + timedelta(days=self.rng.expovariate(1 / mean_days))

        if end > begin and self.member.plan_at(begin).plan_type == "prepaid":
            if due is not None and due < begin:
                due = begin
            plan_top_up(begin)
        for record in sorted(usage, key=_started_at):
            at = _started_at(record)
            if record.plan.plan_type != "prepaid":
                out.append(record)
                continue
            top_up_until(at)
            price = _unit_price(record)
            if price > 0 and balance < price:
                kind = (
                    "voice"
                    if isinstance(record, CallRecord)
                    else "sms"
                    if isinstance(record, SmsRecord)
                    else "data"
                )
                out.append(
                    RefusalRecord(record.correlation_id, self.member, record.plan, kind, at, balance, price)
                )
            else:
                record = _capped(record, balance, price)
                balance -= record.charge_micros
                out.append(record)
            plan_top_up(at)
        if end > begin:
            top_up_until(end)
            if self.member.plan_at(end - timedelta(microseconds=1)).plan_type == "prepaid":
                plan_top_up(end - timedelta(microseconds=1))
        return out, Account(balance, due)


def _started_at(record: CallRecord | SmsRecord | DataSessionRecord) -> datetime:
    if isinstance(record, CallRecord):
        return record.attempted_at
    if isinstance(record, SmsRecord):
        return record.submitted_at
    return record.started_at


def _unit_price(record: CallRecord | SmsRecord | DataSessionRecord) -> int:
    """What the OCS must see in the balance before it lets the usage start."""
    if isinstance(record, CallRecord):
        return voice_unit_price(record.plan, record.record_type, record.roaming)
    if isinstance(record, SmsRecord):
        return record.charge_micros
    return data_charge(record.plan, 1, record.roaming)


def _capped(
    record: CallRecord | SmsRecord | DataSessionRecord, balance: int, price: int
) -> CallRecord | SmsRecord | DataSessionRecord:
    """The usage cut to what ``balance`` pays for: the OCS grants whole units and ends the call or
    session when they run out."""
    if record.charge_micros <= balance or price <= 0:
        return record
    units = balance // price
    if isinstance(record, CallRecord):
        assert record.answered_at is not None
        duration = round(units * 60.0 - 0.5, 3)
        return dataclasses.replace(
            record,
            outcome="completed",
            last_cell=record.last_cell,
            released_at=record.answered_at + timedelta(seconds=duration),
            duration_s=duration,
            charge_micros=units * price,
            credit_limited=True,
        )
    assert isinstance(record, DataSessionRecord)
    total = record.uplink_bytes + record.downlink_bytes
    allowed = units * 1_000_000
    uplink = record.uplink_bytes * allowed // total
    duration = round(record.duration_s * allowed / total, 3)
    return dataclasses.replace(
        record,
        ended_at=record.started_at + timedelta(seconds=duration),
        uplink_bytes=uplink,
        downlink_bytes=allowed - uplink,
        cause_for_rec_closing="volume_limit",
        charge_micros=units * price,
    )


def _opening_account(operator: Operator, member: Member, day: int) -> Account:
    """The account at the start of ``day``: from the memo, or by generating the days before it in order."""
    known = day
    while known > 0 and (member.index, known) not in operator.ledger:
        known -= 1
    account = operator.ledger.get((member.index, known), Account(member.opening_balance_micros))
    for earlier in range(known, day):
        _, account = _generate(operator, member, earlier, account)  # type: ignore[arg-type]
    return account  # type: ignore[return-value]


def _generate(
    operator: Operator, member: Member, day: int, account: Account
) -> tuple[list[UsageRecord], Account]:
    draws = _MemberDay(operator, member, day)
    usage = [*draws.calls(), *draws.sms(), *draws.data_sessions()]
    records, closing = draws.settle(usage, account)
    fee = draws.plan_fee()
    if fee is not None:
        records.append(fee)
    operator.ledger[(member.index, day + 1)] = closing
    return records, closing


def member_day(operator: Operator, member: Member, day: int) -> list[UsageRecord]:
    """Every usage record of ``member`` starting on simulated ``day`` (0-based), in a fixed order."""
    records, _ = _generate(operator, member, day, _opening_account(operator, member, day))
    return records


def day_count(operator: Operator) -> int:
    return math.ceil((operator.end - operator.start).total_seconds() / 86400)


def operator_day(operator: Operator, day: int) -> list[UsageRecord]:
    """All members' usage records starting on ``day``."""
    return [record for member in operator.members for record in member_day(operator, member, day)]
