"""Hostile values, an encoder that writes them verbatim, and the check on what parsing returns, for the
property tests and bench/fuzz_parser.py.

``json.dumps`` refuses or rewrites what a broken producer may still send (integers past 4,300 digits,
``1e400``, ``NaN``, lone surrogate escapes, nesting past the recursion limit), so such values travel as
``RawJson`` and ``encode_document`` splices their text into the output unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cdr_platform.events import Event, Rejection


@dataclass(frozen=True)
class RawJson:
    """JSON text to write verbatim where this value stands in a document."""

    text: str


def nested(depth: int) -> RawJson:
    """An array nested ``depth`` levels deep."""
    return RawJson("[" * depth + "]" * depth)


RAW_LITERALS: list[RawJson] = [
    RawJson("1e400"),
    RawJson("-1e400"),
    RawJson("1E+999999999"),
    RawJson("1e-400"),
    RawJson("NaN"),
    RawJson("Infinity"),
    RawJson("-Infinity"),
    RawJson("9" * 4300),
    RawJson("9" * 4301),
    RawJson("-" + "9" * 5000),
    RawJson("0." + "0" * 5000 + "1"),
    RawJson('"\\ud800"'),
    RawJson('"\\udfff\\ud800"'),
    RawJson('"a\\u0000b"'),
    RawJson('{"a":' * 995 + "1" + "}" * 995),
    nested(33),
    nested(250),
    nested(990),
    nested(5000),
]
"""Values ``json.dumps`` cannot write: huge numbers, non-JSON constants, lone surrogates, deep nesting."""

EXTREME_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**31,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63) - 1,
    10**400,
    -(10**400),
    0.5,
    -0.0,
    1e308,
    5e-324,
    "",
    " ",
    "x" * 5000,
    "\x00",
    "\u2028",
    "\ud800",
    "😀" * 10,
    "NaN",
    "2025-03-01T12:30:15Z",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "2025-02-30T00:00:00Z",
    "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    "00000000-0000-0000-0000-000000000000",
    [],
    {},
    [1, "a", None],
    {"code": 17, "name": "user_busy"},
    {"": {"": {}}},
    *RAW_LITERALS,
]
"""Wrong-typed, out-of-range and odd values to put in any field."""


def encode_document(doc: Any) -> bytes:
    """The JSON of ``doc`` as UTF-8 bytes, with each ``RawJson`` written verbatim.

    Lone surrogates in ``str`` values are written as ``\\ud800`` escapes (``json.dumps`` does that), so
    the bytes are always valid UTF-8 and the surrogate reaches the JSON decoder.
    """
    spliced: list[str] = []

    def placeholder(value: Any) -> Any:
        if isinstance(value, RawJson):
            spliced.append(value.text)
            return f"\x01{len(spliced) - 1}\x01"
        if isinstance(value, dict):
            return {k: placeholder(v) for k, v in value.items()}
        if isinstance(value, list):
            return [placeholder(v) for v in value]
        return value

    text = json.dumps(placeholder(doc))
    for index, literal in enumerate(spliced):
        text = text.replace(f'"\\u0001{index}\\u0001"', literal, 1)
    return text.encode("utf-8")


def objects_in(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The document and the objects nested in it (payload, cause), in a stable order: mutation targets."""
    found, stack = [], [doc]
    while stack and len(found) < 8:
        current = stack.pop(0)
        found.append(current)
        stack += [v for v in current.values() if isinstance(v, dict)]
    return found


def unstorable(result: Event | Rejection) -> str | None:
    """What would keep a parse result out of the warehouse, or None.

    Text that is not valid UTF-8 (a lone surrogate) makes DuckDB invalidate the database when inserted;
    a rejection detail quotes input, shortened, so one over 1,000 characters means a value went unquoted.
    """
    if isinstance(result, Rejection):
        texts = [result.detail, result.event_type or "", result.event_id or ""]
        if len(result.detail) > 1000:
            return "unstorable: detail over 1000 characters"
    else:
        texts = [value for value in result.to_row() if isinstance(value, str)]
    try:
        for text in texts:
            text.encode("utf-8")
    except UnicodeEncodeError:
        return "unstorable: text not UTF-8"
    return None
