"""The simulator's own account of what it produced and intended, as CSV files in one folder.

Written as the run goes, in append order, so a test or a benchmark can compute every expected KPI
without the platform. Files (timestamps are ISO 8601 UTC; booleans are 0/1):

- ``events.csv``: event_id, event_type, member_id, correlation_id, occurred_at, stream, late_hours
  (empty when on time). Exactly the events appended to EventStoreDB, one row each.
- ``calls.csv``: call_id, member_id, record_type, outcome (completed, dropped, busy, no_answer, absent,
  rejected, congestion), cause_code (Q.850, failed calls only), first_cell_id, last_cell_id,
  location_area_code, attempted_at, answered_at, released_at, duration_s, roaming, charge_micros,
  credit_limited (released when the prepaid balance ran out).
- ``sms.csv``: sms_id, member_id, cell_id, submitted_at, delivered, failure_cause, charge_micros.
- ``data_sessions.csv``: session_id, member_id, cell_id, started_at, ended_at, uplink_bytes,
  downlink_bytes, charge_micros.
- ``topups.csv``: topup_id, member_id, at, amount_micros, channel.
- ``refusals.csv``: refusal_id, member_id, usage_kind, at, balance_micros, required_micros.
- ``plan_fees.csv``: fee_id, member_id, plan_id, at, period_start, period_end, amount_micros.
- ``members.csv``: member_id, msisdn, imsi, imei, plan_id, plan_type, activated_at, home_cell_ids,
  bad_coverage, activity, churned, churn_at, churn_kind, plan_change_at, new_plan_id, leaves_at (also
  when after the period), churn_lead_days (0: left without a wind-down), opening_balance_micros,
  billing_day, dips (``start/end/depth`` separated by spaces: spells of low usage of members who stay).
- ``cells.csv``: cell_id, location_area_code, rat_type, quality, congestion_failure_rate, drop_rate.
- ``run.json``: mode, seed, period, the operator and fault configuration, and counts per event type.

The relay writes its own ``relay_faults.jsonl`` (see ``faults``) next to its checkpoint.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from cdr_platform.simulator.builders import ProducedEvent, utc_text
from cdr_platform.simulator.faults import FaultConfig
from cdr_platform.simulator.model import Operator
from cdr_platform.simulator.traffic import (
    CAUSE_OF_OUTCOME,
    CallRecord,
    DataSessionRecord,
    PlanFeeRecord,
    Record,
    RefusalRecord,
    SmsRecord,
    TopupRecord,
)

COLUMNS: dict[str, tuple[str, ...]] = {
    "events": (
        "event_id", "event_type", "member_id", "correlation_id", "occurred_at", "stream", "late_hours",
    ),
    "calls": (
        "call_id", "member_id", "record_type", "outcome", "cause_code", "first_cell_id", "last_cell_id",
        "location_area_code", "attempted_at", "answered_at", "released_at", "duration_s", "roaming",
        "charge_micros", "credit_limited",
    ),
    "sms": ("sms_id", "member_id", "cell_id", "submitted_at", "delivered", "failure_cause", "charge_micros"),
    "data_sessions": (
        "session_id", "member_id", "cell_id", "started_at", "ended_at", "uplink_bytes", "downlink_bytes",
        "charge_micros",
    ),
    "topups": ("topup_id", "member_id", "at", "amount_micros", "channel"),
    "refusals": ("refusal_id", "member_id", "usage_kind", "at", "balance_micros", "required_micros"),
    "plan_fees": ("fee_id", "member_id", "plan_id", "at", "period_start", "period_end", "amount_micros"),
    "members": (
        "member_id", "msisdn", "imsi", "imei", "plan_id", "plan_type", "activated_at", "home_cell_ids",
        "bad_coverage", "activity", "churned", "churn_at", "churn_kind", "plan_change_at", "new_plan_id",
        "leaves_at", "churn_lead_days", "opening_balance_micros", "billing_day", "dips",
    ),
    "cells": ("cell_id", "location_area_code", "rat_type", "quality", "congestion_failure_rate", "drop_rate"),
}  # fmt: skip


def _iso(value: datetime | None) -> str:
    return "" if value is None else utc_text(value)


class GroundTruthWriter:
    """Streams ground-truth rows to CSV files under ``folder`` (replacing a previous run's files)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, TextIO] = {}
        self._writers: dict[str, Any] = {}
        for name, columns in COLUMNS.items():
            handle = (folder / f"{name}.csv").open("w", newline="")
            self._files[name] = handle
            self._writers[name] = csv.writer(handle)
            self._writers[name].writerow(columns)

    def write_operator(self, operator: Operator) -> None:
        drop_prone = {cell.index for cell in operator.cells if cell.quality == "drop_prone"}
        for cell in operator.cells:
            self._writers["cells"].writerow(
                (cell.cell_id, cell.location_area_code, cell.rat_type, cell.quality,
                 f"{cell.congestion_failure_rate:.6f}", f"{cell.drop_rate:.6f}")
            )  # fmt: skip
        for m in operator.members:
            churned = m.churn_at is not None and m.churn_at < operator.end
            self._writers["members"].writerow(
                (m.member_id, m.msisdn, m.imsi, m.imei, m.plan.plan_id, m.plan.plan_type,
                 _iso(m.activated_at),
                 " ".join(operator.cells[i].cell_id for i in m.home_cells),
                 int(sum(i in drop_prone for i in m.home_cells) >= 2), f"{m.activity:.4f}", int(churned),
                 _iso(m.churn_at), m.churn_kind or "", _iso(m.plan_change_at),
                 m.new_plan.plan_id if m.new_plan else "", _iso(m.leaves_at), f"{m.churn_lead_s / 86400:.2f}",
                 m.opening_balance_micros, m.billing_day,
                 " ".join(f"{_iso(d.start)}/{_iso(d.end)}/{d.depth:.3f}" for d in m.dips))
            )  # fmt: skip

    def write_record(self, record: Record) -> None:
        if isinstance(record, CallRecord):
            cause = CAUSE_OF_OUTCOME.get(record.outcome, "")
            self._writers["calls"].writerow(
                (record.call_id, record.member.member_id, record.record_type, record.outcome, cause,
                 record.first_cell.cell_id, record.last_cell.cell_id, record.first_cell.location_area_code,
                 _iso(record.attempted_at), _iso(record.answered_at), _iso(record.released_at),
                 record.duration_s, int(record.roaming), record.charge_micros, int(record.credit_limited))
            )  # fmt: skip
        elif isinstance(record, SmsRecord):
            self._writers["sms"].writerow(
                (record.sms_id, record.member.member_id, record.cell.cell_id, _iso(record.submitted_at),
                 int(record.delivered), record.failure_cause or "", record.charge_micros)
            )  # fmt: skip
        elif isinstance(record, DataSessionRecord):
            self._writers["data_sessions"].writerow(
                (record.session_id, record.member.member_id, record.cell.cell_id, _iso(record.started_at),
                 _iso(record.ended_at), record.uplink_bytes, record.downlink_bytes, record.charge_micros)
            )  # fmt: skip
        elif isinstance(record, RefusalRecord):
            self._writers["refusals"].writerow(
                (record.refusal_id, record.member.member_id, record.usage_kind, _iso(record.at),
                 record.balance_micros, record.required_micros)
            )  # fmt: skip
        elif isinstance(record, PlanFeeRecord):
            self._writers["plan_fees"].writerow(
                (record.fee_id, record.member.member_id, record.plan.plan_id, _iso(record.at),
                 record.period_start.isoformat(), record.period_end.isoformat(), record.amount_micros)
            )  # fmt: skip
        elif isinstance(record, TopupRecord):
            self._writers["topups"].writerow(
                (
                    record.topup_id,
                    record.member.member_id,
                    _iso(record.at),
                    record.amount_micros,
                    record.channel,
                )
            )

    def write_events(self, events: list[ProducedEvent], late_hours: float | None) -> None:
        late = "" if late_hours is None else f"{late_hours:.3f}"
        self._writers["events"].writerows(
            (e.event_id, e.event_type, e.member_id, e.correlation_id, _iso(e.occurred_at), e.stream, late)
            for e in events
        )

    def write_run(
        self, mode: str, operator: Operator, faults: FaultConfig, counts: dict[str, int], finished: bool
    ) -> None:
        summary = {
            "mode": mode,
            "seed": operator.seed,
            "start": _iso(operator.start),
            "end": _iso(operator.end),
            "finished": finished,
            "operator": asdict(operator.config),
            "faults": asdict(faults),
            "events_by_type": dict(sorted(counts.items())),
            "events": sum(counts.values()),
        }
        (self.folder / "run.json").write_text(json.dumps(summary, indent=2) + "\n")

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()

    def __enter__(self) -> GroundTruthWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
