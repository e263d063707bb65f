"""A run worker that has loaded the code location before its run is known.

``python -m cdr_platform.defs.warm_run_worker <module>`` reads the instance's serialized
``InstanceRef`` from its first stdin line, imports ``<module>`` (a code location), builds its
repository and jobs, and goes once through the paths a run takes (loading the location from its
code pointer, opening the instance's storage), so their imports are done. It then waits for the
second line: a serialized ``ExecuteRunArgs``, and does exactly what ``dagster api execute_run``
does with it, in this process. Loading the location is most of a run's start (about 8 s of CPU
on these machines); ``LocalRunLauncher`` keeps such a worker ready so a launched run skips it. A
worker serves one run and exits; an empty stdin (the launcher's process ended, or the worker was
discarded) ends it without doing anything.
"""

from __future__ import annotations

import gc
import importlib
import sys
import traceback

from dagster import Definitions


def preload(module_name: str, instance_ref: str) -> None:
    """Load the code location and everything a run imports before its first step."""
    import dagster._cli.api  # noqa: F401  (the run's entry point and the execution machinery)
    from dagster import DagsterInstance
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.instance import InstanceRef
    from dagster._serdes import deserialize_value

    module = importlib.import_module(module_name)
    for name, value in vars(module).items():
        if isinstance(value, Definitions):
            value.get_repository_def().get_all_jobs()
            # The run reconstructs its job from a code pointer: the same path, now cached.
            ReconstructableRepository.for_module(module_name, name).get_definition()
    with DagsterInstance.from_ref(deserialize_value(instance_ref, InstanceRef)) as instance:
        instance.get_run_records(limit=1)  # run and event storage imported and migrated-checked
    # What is loaded now lives as long as the run: keep the collector from walking it again and
    # again (bench/scale.py's landing ceiling spent about half its CPU in full collections over
    # the imported modules before it froze them the same way).
    gc.freeze()


def serve_one_run(line: str) -> int:
    """Execute the run in ``line`` as ``dagster api execute_run`` would; the exit code."""
    from dagster._cli.api import _execute_run_command_body
    from dagster._cli.utils import get_instance_for_cli
    from dagster._core.errors import DagsterExecutionInterruptedError
    from dagster._grpc.types import ExecuteRunArgs
    from dagster._serdes import deserialize_value
    from dagster._utils.interrupts import capture_interrupts

    with capture_interrupts():
        args = deserialize_value(line, ExecuteRunArgs)
        with get_instance_for_cli(instance_ref=args.instance_ref) as instance:
            try:
                return _execute_run_command_body(
                    args.run_id, instance, lambda _event: None, set_exit_code_on_failure=False
                )
            except (Exception, DagsterExecutionInterruptedError):
                # Before any step ran (the location failed to load, the run is gone): say why on
                # the run itself rather than only in this process's output.
                run = instance.get_run_by_id(args.run_id)
                if run is not None and not run.is_finished:
                    instance.report_engine_event(
                        f"The run worker could not start the run:\n{traceback.format_exc()}", run
                    )
                    instance.report_run_failed(run)
                return 1


def main(argv: list[str]) -> int:
    module_name = argv[1]
    instance_ref = sys.stdin.readline()
    if not instance_ref.strip():
        return 0
    try:
        preload(module_name, instance_ref)
    except Exception:
        # Not fatal here: the run's own load below fails again and reports it on the run.
        traceback.print_exc()
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    return serve_one_run(line)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
