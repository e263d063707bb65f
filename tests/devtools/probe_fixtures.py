"""Not collected by the suite: ``test_pytest_stop.py`` runs it in a pytest of its own and signals it."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.integration


def test_holds_the_session_endpoints_until_signalled(kinesis_endpoint: str, eventstore_uri: str) -> None:
    print(f"READY {kinesis_endpoint} {eventstore_uri}", flush=True)
    threading.Event().wait()
