"""Deterministic event ids.

An event's id is the RFC 4122 UUIDv5 of ``"<event_type>:<business_key>"`` under one fixed project
namespace, so a producer that retries, or a relay that redelivers, emits the *same* id for the same business
fact and the lake can deduplicate on ``event_id`` alone. The namespace is frozen forever: changing it would
silently break deduplication against everything already landed.
"""

from __future__ import annotations

import hashlib
from uuid import UUID

EVENT_ID_NAMESPACE = UUID("6f1c5a0e-3b8e-5d57-9c2a-cd7a0c1e8f42")
"""Project namespace for :func:`event_id_for`. Never change it."""

_NAMESPACE_SHA1 = hashlib.sha1(EVENT_ID_NAMESPACE.bytes, usedforsecurity=False)
_CLEAR_VERSION_AND_VARIANT = ((1 << 128) - 1) & ~(0xF000 << 64) & ~(0xC000 << 48)
_SET_VERSION_5_AND_RFC4122 = (0x5000 << 64) | (0x8000 << 48)


def event_id_for(event_type: str, business_key: str) -> UUID:
    """Return the deterministic id of the ``event_type`` event identified by ``business_key``.

    Equal to ``uuid.uuid5(EVENT_ID_NAMESPACE, f"{event_type}:{business_key}")`` (tested), computed from a
    pre-hashed namespace because producers call this once per event. Same inputs give the same id in every
    process and release; the event type is part of the name, so ``call_ended`` and ``call_dropped`` of one
    call never collide.
    """
    digest = _NAMESPACE_SHA1.copy()
    digest.update(f"{event_type}:{business_key}".encode())
    value = int.from_bytes(digest.digest()[:16]) & _CLEAR_VERSION_AND_VARIANT | _SET_VERSION_5_AND_RFC4122
    return UUID(int=value)
