"""usage_refused and plan_fee_charged reject documents that contradict what they state."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cdr_platform.events import Rejection, RejectionReason, encode_event, parse_event

from .samples import build_event

pytestmark = pytest.mark.unit


def _parsed_with(event_type: str, **payload: Any) -> object:
    doc = json.loads(encode_event(build_event(event_type)))
    doc["payload"].update(payload)
    return parse_event(json.dumps(doc))


def test_a_refusal_needs_a_balance_short_of_the_first_unit() -> None:
    assert not isinstance(
        _parsed_with("usage_refused", balance_micros=79_999, required_micros=80_000), Rejection
    )
    covered = _parsed_with("usage_refused", balance_micros=80_000, required_micros=80_000)
    assert isinstance(covered, Rejection) and covered.reason == RejectionReason.INVALID_VALUE
    assert "not a refusal" in covered.detail
    unknown = _parsed_with("usage_refused", reason="fraud")
    assert isinstance(unknown, Rejection) and "reason" in unknown.detail


def test_a_plan_fee_covers_a_forward_period_of_dates() -> None:
    backwards = _parsed_with("plan_fee_charged", period_start="2025-04-01", period_end="2025-03-01")
    assert isinstance(backwards, Rejection) and "period_end" in backwards.detail
    not_a_date = _parsed_with("plan_fee_charged", period_start="2025-04-01T00:00:00Z")
    assert isinstance(not_a_date, Rejection) and "period_start" in not_a_date.detail
