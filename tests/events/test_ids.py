"""Event ids are deterministic UUIDv5s of the business key, so retries deduplicate."""

from __future__ import annotations

import uuid

import pytest

from cdr_platform.events import EVENT_ID_NAMESPACE, event_id_for

from .samples import build_event

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("key", ["call-0001", "", "ü-ß-漢字", "x" * 500])
def test_event_id_is_the_standard_uuid5_of_type_and_key(key: str) -> None:
    expected = uuid.uuid5(EVENT_ID_NAMESPACE, f"call_ended:{key}")
    assert event_id_for("call_ended", key) == expected
    assert event_id_for("call_ended", key).version == 5


def test_namespace_is_frozen() -> None:
    assert str(EVENT_ID_NAMESPACE) == "6f1c5a0e-3b8e-5d57-9c2a-cd7a0c1e8f42"
    assert str(event_id_for("call_ended", "call-0001")) == "8d3fb04a-81d1-572c-a97c-685384547b74"


def test_same_business_key_gives_the_same_id() -> None:
    assert build_event("call_ended", "call-7").event_id == build_event("call_ended", "call-7").event_id


def test_different_business_keys_give_different_ids() -> None:
    ids = {event_id_for("call_ended", f"call-{i}") for i in range(10_000)}
    assert len(ids) == 10_000


def test_event_type_is_part_of_the_id() -> None:
    assert build_event("call_ended", "call-7").event_id != build_event("call_dropped", "call-7").event_id
