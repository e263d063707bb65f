"""Benchmark: encode and parse throughput of a typical call_ended event, on one core.

Baselines in the same run: plain ``json.loads`` (no validation) and the bare pydantic model. Run:
``.venv/bin/python bench/events_codec.py``.
"""

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cdr_platform.events import CallEnded, encode_event, make_event, parse_event
from tests.events.samples import SAMPLE_PAYLOADS

PAYLOAD = SAMPLE_PAYLOADS["call_ended"]
KW = dict(
    occurred_at=datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
    member_id="M0001234",
    correlation_id="call-0001",
    producer="msc-mediation",
    payload=PAYLOAD,
)


def rate(fn, n: int) -> float:
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for i in range(n):
            fn(i)
        best = max(best, n / (time.perf_counter() - t))
    return best


def main() -> None:
    N = 50_000
    event = make_event("call_ended", business_key="call-0001", **KW)
    raw = encode_event(event)
    assert parse_event(raw) == event
    payload_model = event.payload
    doc = json.loads(raw)
    doc["schema_version"] = 1
    doc["payload"]["duration_ms"] = int(doc["payload"].pop("call_duration_s") * 1000)
    del doc["payload"]["cause_for_termination"]
    v1 = json.dumps(doc).encode()
    assert parse_event(v1).payload.call_duration_s == 83.4
    bad = raw.replace(b'"roaming":false', b'"roaming":"no"')
    rows = [
        (
            "make_event (validated, dict payload)",
            rate(lambda i: make_event("call_ended", business_key=str(i), **KW), N),
        ),
        (
            "make_event (payload model)",
            rate(
                lambda i: make_event("call_ended", business_key=str(i), **{**KW, "payload": payload_model}), N
            ),
        ),
        ("encode_event", rate(lambda i: encode_event(event), N)),
        ("parse_event", rate(lambda i: parse_event(raw), N)),
        ("parse_event of a v1 document (upcast)", rate(lambda i: parse_event(v1), N // 5)),
        ("parse_event of a bad document (rejection)", rate(lambda i: parse_event(bad), N // 5)),
        ("baseline json.loads (no validation)", rate(lambda i: json.loads(raw), N)),
        ("baseline CallEnded.model_validate_json", rate(lambda i: CallEnded.model_validate_json(raw), N)),
    ]
    print(f"event size: {len(raw)} bytes")
    print(f"{'operation':45} {'events/s':>12}")
    for name, r in rows:
        print(f"{name:45} {r:12,.0f}")
    print(f"parse_event / json.loads = {rows[3][1] / rows[6][1]:.2f}")


if __name__ == "__main__":
    main()
