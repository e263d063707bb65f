"""ITU-T Q.850 release causes, as carried by ``call_failed``.

Only causes a mobile network realistically reports are listed; a code outside this table is rejected
rather than guessed at, so downstream marts can rely on ``cause.name`` being one of these values.
"""

from __future__ import annotations

Q850_CAUSE_NAMES: dict[int, str] = {
    1: "unallocated_number",
    3: "no_route_to_destination",
    16: "normal_call_clearing",
    17: "user_busy",
    18: "no_user_responding",
    19: "no_answer_from_user",
    20: "subscriber_absent",
    21: "call_rejected",
    22: "number_changed",
    27: "destination_out_of_order",
    28: "invalid_number_format",
    29: "facility_rejected",
    31: "normal_unspecified",
    34: "no_circuit_channel_available",
    38: "network_out_of_order",
    41: "temporary_failure",
    42: "switching_equipment_congestion",
    44: "requested_circuit_channel_not_available",
    47: "resource_unavailable_unspecified",
    50: "requested_facility_not_subscribed",
    55: "incoming_calls_barred_within_cug",
    57: "bearer_capability_not_authorized",
    58: "bearer_capability_not_presently_available",
    63: "service_or_option_not_available",
    65: "bearer_capability_not_implemented",
    79: "service_or_option_not_implemented",
    88: "incompatible_destination",
    102: "recovery_on_timer_expiry",
    111: "protocol_error_unspecified",
    127: "interworking_unspecified",
}
"""Q.850 cause value -> snake_case name (e.g. 17 user_busy, 34 no_circuit_channel_available)."""
