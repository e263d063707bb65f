"""Fuzz ``parse_event`` and KPL de-aggregation with mutated sample payloads: nothing may raise.

Every payload starts from a valid sample document of one (event_type, schema_version) the reader
accepts (the upcast versions a quarter of the time), then takes one to three mutations: a field
replaced by an extreme or wrong-typed value (integers past 64 bits or 4,300 digits, ``1e400``, deep
nesting, lone surrogates...), a numeric field pushed past its range, a field removed or added, the
version or type swapped, or the encoded bytes truncated, flipped, spliced or replaced. A fifth of the
payloads travel inside a KPL aggregate that is itself damaged and re-digested, so the damage gets past
the MD5 check. Baseline in the same run: the untouched samples, which must all parse.

Run: ``.venv/bin/python bench/fuzz_parser.py [--payloads 10000] [--seed 16]``. Prints parsed, rejected
by reason, raised by exception type and unstorable results (text that is not UTF-8, unbounded
details); exits 1 if anything raised, a result is unstorable, or a sample failed to parse.
"""

from __future__ import annotations

import argparse
import collections
import copy
import hashlib
import random
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cdr_platform.events import CURRENT_SCHEMA_VERSIONS, EVENT_CLASSES, Rejection, parse_event
from cdr_platform.events.framing import DIGEST_SIZE, MAGIC, UserRecord, deaggregate, encode_aggregate
from tests.events.mutations import EXTREME_VALUES, RawJson, encode_document, nested, objects_in, unstorable
from tests.events.samples import SCHEMA_VERSIONS, sample_document

OLD_VERSIONS = [(t, v) for t, v in SCHEMA_VERSIONS if v < CURRENT_SCHEMA_VERSIONS[t]]
TEXT_PIECES = ["a", "0", " ", "é", "😀", r"\u0000", r"\ud800", r"\udfff", r"\ud83d\ude00", r"\"", r"\\"]
"""Pieces of JSON string literals, escapes included, so lone surrogates reach the decoder as escapes."""


def extreme_value(rng: random.Random) -> Any:
    """A fixed extreme, or one drawn at random: an integer of any size, a depth, a float, odd text."""
    kind = rng.random()
    if kind < 0.6:
        return copy.deepcopy(rng.choice(EXTREME_VALUES))
    if kind < 0.75:
        zeros = rng.choice([rng.randint(0, 30), rng.randint(0, 4400)])
        return RawJson(rng.choice(["", "-"]) + str(rng.randint(1, 9)) + "0" * zeros)
    if kind < 0.85:
        return nested(rng.choice([rng.randint(1, 40), rng.randint(150, 260), rng.randint(900, 1100)]))
    if kind < 0.92:
        return RawJson(f"{rng.choice(['', '-'])}{rng.randint(1, 9)}e{rng.randint(-400, 400)}")
    return RawJson('"' + "".join(rng.choice(TEXT_PIECES) for _ in range(rng.randint(0, 12))) + '"')


def numeric_extreme(rng: random.Random) -> Any:
    """A number at or past the edge of what a field, a float or the warehouse can hold."""
    magnitude = rng.choice([2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**20, 10**308, 10**309, 10**400])
    literal = rng.choice(["1e308", "1.8e308", "1e400", "1e-400", "9" * rng.randint(300, 4400)])
    return rng.choice([magnitude, -magnitude, magnitude * 1000, RawJson(literal), RawJson("-" + literal), -1])


def mutate_document(doc: dict[str, Any], rng: random.Random) -> None:
    target = rng.choice(objects_in(doc))
    numbers = [k for k, v in target.items() if isinstance(v, int | float) and not isinstance(v, bool)]
    kind = rng.random()
    if numbers and rng.random() < 0.3:
        target[rng.choice(numbers)] = numeric_extreme(rng)
    elif kind < 0.55 and target:
        target[rng.choice(list(target))] = extreme_value(rng)
    elif kind < 0.7 and target:
        del target[rng.choice(list(target))]
    elif kind < 0.8:
        name = rng.choice(["extra", "duration_ms", "charge", "call_duration_s", "cause", ""])
        target[name] = extreme_value(rng)
    elif kind < 0.9:
        doc["schema_version"] = rng.choice([0, 1, 2, 3, -1, 2**64, 1.0, "1", True, None, RawJson("1e400")])
    else:
        doc["event_type"] = rng.choice([*EVENT_CLASSES, "", "call_teleported", 7, None])


def mutate_bytes(raw: bytes, rng: random.Random) -> bytes:
    kind = rng.random()
    position = rng.randrange(len(raw) + 1)
    if kind < 0.3:
        return raw[:position]
    if kind < 0.55:
        data = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind < 0.75:
        return raw[:position] + rng.randbytes(rng.randint(1, 16)) + raw[position:]
    if kind < 0.85:
        return rng.choice([b"\xef\xbb\xbf", b"[", b" ", b"\x00"]) + raw
    if kind < 0.95:
        return b"[" + raw + b"]"
    return rng.randbytes(rng.randint(0, 64))


def mutated_payload(rng: random.Random) -> bytes:
    doc = sample_document(*rng.choice(OLD_VERSIONS if rng.random() < 0.25 else SCHEMA_VERSIONS))
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.75:
            mutate_document(doc, rng)
        else:
            return mutate_bytes(encode_document(doc), rng)
    return encode_document(doc)


def mutate_aggregate(aggregate: bytes, rng: random.Random) -> bytes:
    """Damage the protobuf body, then re-digest it so the damage reaches the decoder."""
    body = mutate_bytes(aggregate[len(MAGIC) : -DIGEST_SIZE], rng)
    if rng.random() < 0.1:
        body = b"\x0a" + b"\xff" * rng.randint(1, 100_000) + body  # an over-long varint
    return MAGIC + body + hashlib.md5(body, usedforsecurity=False).digest()


class Tally:
    """Outcomes by kind, with the first failing input of each kind kept for the report."""

    def __init__(self) -> None:
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.failures: dict[str, tuple[bytes, str]] = {}

    def run(self, step: Callable[[], Any], raw: bytes) -> Any:
        try:
            return step()
        except Exception as exc:  # counting these is the point of the script
            kind = f"raised {type(exc).__name__}"
            self.outcomes[kind] += 1
            self.failures.setdefault(kind, (raw, "".join(traceback.format_exception(exc, limit=-3))))
            return None

    def parse(self, raw: bytes) -> None:
        result = self.run(lambda: parse_event(raw), raw)
        if result is None:
            return
        problem = unstorable(result)
        if problem is not None:
            self.outcomes[problem] += 1
            self.failures.setdefault(problem, (raw, repr(result)[:500]))
        elif isinstance(result, Rejection):
            self.outcomes[f"rejected {result.reason.value}"] += 1
        else:
            self.outcomes["parsed"] += 1

    @property
    def failed(self) -> int:
        return sum(n for kind, n in self.outcomes.items() if kind.startswith(("raised", "unstorable")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payloads", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    baseline = Tally()
    for event_type, version in SCHEMA_VERSIONS:
        baseline.parse(encode_document(sample_document(event_type, version)))

    tally = Tally()
    started = time.perf_counter()
    produced = aggregates = 0
    while produced < args.payloads:
        if rng.random() < 0.8:
            tally.parse(mutated_payload(rng))
            produced += 1
            continue
        count = min(rng.randint(1, 8), args.payloads - produced)
        users = [UserRecord(f"M{rng.randrange(100):04d}", mutated_payload(rng)) for _ in range(count)]
        aggregate = encode_aggregate(users)
        if rng.random() < 0.7:
            aggregate = mutate_aggregate(aggregate, rng)
        aggregates += 1
        for record in tally.run(lambda aggregate=aggregate: deaggregate("M0000", aggregate), aggregate) or []:
            tally.parse(record.data)
        produced += count
    seconds = time.perf_counter() - started

    parsed = sum(n for kind, n in tally.outcomes.items() if not kind.startswith("raised"))
    print(f"{'outcome':42} {'count':>8}")
    print(f"{'baseline: valid samples parsed':42} {baseline.outcomes['parsed']:>8} of {len(SCHEMA_VERSIONS)}")
    print(f"{'KPL aggregates (70% damaged)':42} {aggregates:>8}")
    for outcome, count in sorted(tally.outcomes.items()):
        print(f"{outcome:42} {count:>8}")
    print(f"{'records parsed after de-aggregation':42} {parsed:>8}  ({parsed / seconds:,.0f}/s)")
    for kind, (raw, where) in tally.failures.items():
        print(f"\nfirst {kind} on {raw[:200]!r}\n{where}")
    failed = tally.failed + baseline.failed
    samples_parsed = baseline.outcomes["parsed"]
    print(
        f"raised or unstorable: {failed} of {args.payloads} payloads (must be 0); "
        f"valid samples parsed: {samples_parsed} of {len(SCHEMA_VERSIONS)}"
    )
    return 0 if failed == 0 and samples_parsed == len(SCHEMA_VERSIONS) else 1


if __name__ == "__main__":
    sys.exit(main())
