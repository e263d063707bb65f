"""A code location of the Kinesis landing alone (for the crash test): its real job, sensor and resources."""

from dagster import Definitions

import cdr_platform.defs.kinesis.definitions as kinesis
from cdr_platform.defs.resources import build_resources
from cdr_platform.settings import load_settings

defs = Definitions.merge(kinesis.defs, Definitions(resources=build_resources(load_settings())))
