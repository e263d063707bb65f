"""Sensors skip with a clear reason while an endpoint is down, and work again once it is back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context

from cdr_platform.defs.eventstore.sensors import eventstore_member_sensor
from cdr_platform.defs.kinesis.sensors import kinesis_usage_sensor
from cdr_platform.defs.resources import EventStoreResource, KinesisResource, LakeResource
from cdr_platform.devstack.kinesis_local import kill_process, start_kinesis_local, wait_until_serving
from cdr_platform.devstack.ports import free_port, wait_for_port
from cdr_platform.sources.kinesis_client import kinesis_client
from tests.kinesis_helpers import new_stream

pytestmark = pytest.mark.integration

TICK_LIMIT_S = 60
"""Dagster abandons a sensor tick after this long."""


def _tick(sensor: Callable[..., Any], resources: dict[str, Any]) -> SensorResult | SkipReason:
    with DagsterInstance.ephemeral() as instance:
        return sensor(build_sensor_context(instance=instance, resources=resources))


def test_kinesis_sensor_recovers_when_kinesis_is_back(tmp_path: Path, lake_paths) -> None:
    port, persist = free_port(), tmp_path / "kinesis-data"
    endpoint = f"http://127.0.0.1:{port}"
    process = start_kinesis_local(port, tmp_path / "k.log", persist_dir=persist)
    try:
        wait_until_serving(endpoint, process, 60)
        stream = new_stream(kinesis_client("us-east-1", endpoint))
        # kinesis-local persists its state every second; the restart below reloads it from that file
        saved = persist / "kinesis-data.json"
        deadline = time.monotonic() + 30
        while not (saved.exists() and stream in saved.read_text()):
            assert time.monotonic() < deadline, "kinesis-local never persisted the stream"
            time.sleep(0.1)
    finally:
        kill_process(process.pid)
        process.wait(timeout=10)
    resources = {
        "kinesis": KinesisResource(region="us-east-1", endpoint_url=endpoint, usage_stream=stream),
        "lake": LakeResource(catalog=lake_paths[0], data_path=lake_paths[1]),
    }
    down = _tick(kinesis_usage_sensor, resources)
    assert isinstance(down, SkipReason) and "unreachable" in (down.skip_message or "")

    process = start_kinesis_local(port, tmp_path / "k.log", persist_dir=persist)
    try:
        wait_until_serving(endpoint, process, 60)
        assert isinstance(_tick(kinesis_usage_sensor, resources), SensorResult)
    finally:
        kill_process(process.pid)
        process.wait(timeout=10)


def test_eventstore_sensor_recovers_when_eventstore_is_back(tmp_path: Path, lake_paths) -> None:
    port = free_port()
    command = [sys.executable, "-m", "cdr_platform.devstack.eventstore", "--port", str(port), "--memory"]
    resources = {
        "eventstore": EventStoreResource(
            uri=f"esdb://127.0.0.1:{port}?Tls=false", member_event_types=["member_activated"]
        ),
        "lake": LakeResource(catalog=lake_paths[0], data_path=lake_paths[1]),
    }
    down = _tick(eventstore_member_sensor, resources)
    assert isinstance(down, SkipReason)
    assert f"EventStoreDB at esdb://127.0.0.1:{port}" in (down.skip_message or "")
    assert "unreachable" in (down.skip_message or "")

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for_port("127.0.0.1", port, 60)
        back = _tick(eventstore_member_sensor, resources)
        assert isinstance(back, SensorResult) and not back.run_requests
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def frozen(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """SIGSTOP the process (it keeps its listening socket but answers nothing), SIGCONT after."""
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


def _timed_tick(sensor: Callable[..., Any], resources: dict[str, Any]) -> tuple[SkipReason, float]:
    started = time.monotonic()
    result = _tick(sensor, resources)
    assert isinstance(result, SkipReason), result
    return result, time.monotonic() - started


def test_a_frozen_kinesis_endpoint_is_a_named_skip_within_the_deadline(tmp_path: Path, lake_paths) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = start_kinesis_local(port, tmp_path / "k.log")
    try:
        wait_until_serving(endpoint, process, 60)
        stream = new_stream(kinesis_client("us-east-1", endpoint))
        resources = {
            "kinesis": KinesisResource(region="us-east-1", endpoint_url=endpoint, usage_stream=stream),
            "lake": LakeResource(catalog=lake_paths[0], data_path=lake_paths[1]),
        }
        with frozen(process):
            skip, took = _timed_tick(kinesis_usage_sensor, resources)
        assert f"Kinesis stream {stream!r} at {endpoint}" in (skip.skip_message or "")
        assert took < TICK_LIMIT_S - 15  # a deadline, not a speed: the tick must end before Dagster kills it
    finally:
        kill_process(process.pid)
        process.wait(timeout=10)


def test_a_frozen_eventstore_is_a_named_skip_within_the_deadline(lake_paths) -> None:
    port = free_port()
    command = [sys.executable, "-m", "cdr_platform.devstack.eventstore", "--port", str(port), "--memory"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for_port("127.0.0.1", port, 60)
        resources = {
            "eventstore": EventStoreResource(
                uri=f"esdb://127.0.0.1:{port}?Tls=false", member_event_types=["member_activated"]
            ),
            "lake": LakeResource(catalog=lake_paths[0], data_path=lake_paths[1]),
        }
        with frozen(process):
            skip, took = _timed_tick(eventstore_member_sensor, resources)
        assert f"EventStoreDB at esdb://127.0.0.1:{port}" in (skip.skip_message or "")
        assert took < TICK_LIMIT_S - 15
    finally:
        process.kill()
        process.wait(timeout=10)
