"""Typed payloads, one model per event type (current schema version only).

Field names and meanings follow 3GPP TS 32.298 ("Charging Data Record (CDR) parameter description"),
in snake_case, wherever the spec has the concept:

- ``calling_party_number`` / ``called_party_number``: callingNumber / calledNumber of the MSC MOC/MTC record,
  E.164 digits without ``+`` (or a short code such as 112).
- ``record_type``: recordType, ``mo_call_record`` or ``mt_call_record``.
- ``served_imsi`` / ``served_imei`` / ``served_msisdn``: servedIMSI / servedIMEI / servedMSISDN.
- ``cell_id``: the serving cell (CGI for GERAN/UTRAN, ECGI for EUTRAN, NCGI for NR) as an opaque string.
- ``location_area_code``: locationAreaCode (the 16-bit LAC, or TAC on EUTRAN/NR).
- ``rat_type``: rATType, one of GERAN, UTRAN, EUTRAN, NR.
- ``roaming``: the roaming indicator (served party outside its home PLMN).
- ``call_duration_s``: callDuration, in seconds (float, sub-second precision kept).
- ``cause_for_termination``: causeForTerm of the MSC record (normal_release, abnormal_release, ...).
- ``service_centre`` / ``message_reference`` / ``destination_number``: serviceCentre, messageReference and
  destinationNumber of the SMS-MO record.
- ``charging_id``, ``access_point_name_ni`` (the APN), ``data_volume_uplink`` / ``data_volume_downlink``
  (bytes), ``duration_s`` (duration) and ``cause_for_rec_closing`` (causeForRecClosing) of the PGW record.

Money is integer *micros* of the currency's major unit (``charge_micros=1_250_000`` is 1.25 EUR), with the
ISO 4217 code alongside: exact, JSON-safe, summable in SQL without Decimal round-trips.

All models are strict (no ``"12"`` -> 12 coercion), frozen and reject unknown fields, so a document
either matches the current schema exactly or is rejected with the offending field named.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import UUID5, BaseModel, ConfigDict, Field, model_validator

from cdr_platform.events.causes import Q850_CAUSE_NAMES

PartyNumber = Annotated[str, Field(pattern=r"^[0-9]{3,15}$")]
Imsi = Annotated[str, Field(pattern=r"^[0-9]{6,15}$")]
Imei = Annotated[str, Field(pattern=r"^[0-9]{14,16}$")]
PlmnId = Annotated[str, Field(pattern=r"^[0-9]{5,6}$")]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Identifier = Annotated[str, Field(min_length=1, max_length=128)]
CellId = Annotated[str, Field(min_length=1, max_length=64)]
LocationAreaCode = Annotated[int, Field(ge=0, le=0xFFFF)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
INT64_MAX = 2**63 - 1
"""Every count and amount fits a warehouse BIGINT; larger values are rejected here, not at landing."""
ByteCount = Annotated[int, Field(ge=0, le=INT64_MAX)]
Micros = Annotated[int, Field(ge=0, le=INT64_MAX)]

RatType = Literal["GERAN", "UTRAN", "EUTRAN", "NR"]
RecordType = Literal["mo_call_record", "mt_call_record"]
CauseForTermination = Literal[
    "normal_release",
    "abnormal_release",
    "camel_init_call_release",
    "unsuccessful_call_attempt",
    "partial_record",
    "partial_record_call_reestablishment",
]
CauseForRecClosing = Literal[
    "normal_release",
    "abnormal_release",
    "volume_limit",
    "time_limit",
    "serving_node_change",
    "max_change_cond",
    "management_intervention",
    "rat_change",
]
SmsFailureCause = Literal[
    "absent_subscriber",
    "unknown_subscriber",
    "memory_capacity_exceeded",
    "validity_period_expired",
    "barred",
    "network_failure",
]
UsageKind = Literal["voice", "sms", "data"]
QuantityUnit = Literal["second", "message", "byte"]
RatedEventType = Literal["call_ended", "call_dropped", "sms_submitted", "data_session_ended"]
TopupChannel = Literal["voucher", "card", "bank_transfer", "retail", "app", "auto_topup"]
PlanType = Literal["prepaid", "postpaid"]
DeactivationReason = Literal["customer_request", "port_out", "non_payment", "fraud", "inactivity", "deceased"]
RefusalReason = Literal["insufficient_balance"]
IsoDate = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]

UNIT_OF_USAGE_KIND: dict[str, str] = {"voice": "second", "sms": "message", "data": "byte"}
"""The only unit a rated quantity may have for each usage kind."""


class Payload(BaseModel):
    """Base of every payload: strict, immutable, closed (unknown fields are an error)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class Q850Cause(Payload):
    """A Q.850 release cause; ``name`` must be the table's name for ``code``."""

    code: int = Field(ge=0, le=127)
    name: str

    @model_validator(mode="after")
    def _name_matches_code(self) -> Self:
        expected = Q850_CAUSE_NAMES.get(self.code)
        if expected is None:
            raise ValueError(f"unsupported Q.850 cause code {self.code}")
        if self.name != expected:
            raise ValueError(f"Q.850 cause {self.code} is {expected!r}, not {self.name!r}")
        return self

    @classmethod
    def of(cls, code: int) -> Q850Cause:
        """Build the cause for ``code`` with its canonical name (KeyError for codes outside the table)."""
        return cls(code=code, name=Q850_CAUSE_NAMES[code])


class CallLeg(Payload):
    """Fields shared by every call event (one MSC MOC/MTC record's view of the call)."""

    record_type: RecordType
    calling_party_number: PartyNumber
    called_party_number: PartyNumber
    served_imsi: Imsi
    served_imei: Imei | None = None
    cell_id: CellId
    location_area_code: LocationAreaCode
    rat_type: RatType
    roaming: bool


class CallAttemptedPayload(CallLeg):
    """Seizure of the call (occurred_at = seizureTime)."""


class CallAnsweredPayload(CallLeg):
    """The called party answered (occurred_at = answerTime)."""


class CallEndedPayload(CallLeg):
    """An answered call was released (occurred_at = releaseTime). Schema v2; v1 had ``duration_ms``."""

    call_duration_s: Seconds
    cause_for_termination: CauseForTermination = "normal_release"


class CallDroppedPayload(CallLeg):
    """An answered call was lost by the network (radio link failure, handover failure...)."""

    call_duration_s: Seconds
    cause_for_termination: CauseForTermination = "abnormal_release"


class CallFailedPayload(CallLeg):
    """A call attempt that never got answered, with the Q.850 reason."""

    cause: Q850Cause


class SmsLeg(Payload):
    """Fields shared by SMS events (the SMS-MO record of the member's message)."""

    served_imsi: Imsi
    served_msisdn: PartyNumber
    destination_number: PartyNumber
    service_centre: PartyNumber
    message_reference: int = Field(ge=0, le=255)
    cell_id: CellId | None = None
    rat_type: RatType
    roaming: bool


class SmsSubmittedPayload(SmsLeg):
    """The SMSC accepted the member's message (occurred_at = originationTime)."""


class SmsDeliveredPayload(SmsLeg):
    """The SMSC reports delivery to the destination."""


class SmsFailedPayload(SmsLeg):
    """The SMSC gave up on the message."""

    failure_cause: SmsFailureCause


class DataSessionEndedPayload(Payload):
    """A PGW record closed (occurred_at = record closing time); volumes in bytes."""

    served_imsi: Imsi
    served_imei: Imei | None = None
    served_msisdn: PartyNumber
    charging_id: int = Field(ge=0, le=0xFFFFFFFF)
    access_point_name_ni: str = Field(min_length=1, max_length=100)
    rat_type: RatType
    cell_id: CellId | None = None
    roaming: bool
    data_volume_uplink: ByteCount
    data_volume_downlink: ByteCount
    duration_s: Seconds
    cause_for_rec_closing: CauseForRecClosing = "normal_release"


class UsageRatedPayload(Payload):
    """The OCS priced one usage event. Schema v2; v1 carried ``charge`` as a decimal string.

    ``rated_event_id`` is the id of the usage event that was rated (the envelope's correlation_id stays
    the call/session id); ``quantity`` is in ``quantity_unit``, which must fit ``usage_kind``.
    """

    rated_event_id: UUID5
    rated_event_type: RatedEventType
    usage_kind: UsageKind
    quantity: int = Field(ge=0, le=INT64_MAX)
    quantity_unit: QuantityUnit
    tariff_id: Identifier
    charge_micros: Micros
    currency: CurrencyCode

    @model_validator(mode="after")
    def _unit_fits_kind(self) -> Self:
        expected = UNIT_OF_USAGE_KIND[self.usage_kind]
        if self.quantity_unit != expected:
            raise ValueError(f"{self.usage_kind} usage is rated in {expected!r}, not {self.quantity_unit!r}")
        return self


class TopupCompletedPayload(Payload):
    """A prepaid balance top-up succeeded."""

    amount_micros: int = Field(gt=0, le=INT64_MAX)
    currency: CurrencyCode
    channel: TopupChannel


class UsageRefusedPayload(Payload):
    """The OCS refused a chargeable service: the prepaid balance could not pay for its first unit.

    Nothing was used or charged (a refused call is released before it is routed, so it has no call
    record); ``required_micros`` is the price of that first unit (a minute, a message, a megabyte).
    """

    usage_kind: UsageKind
    reason: RefusalReason
    tariff_id: Identifier
    balance_micros: Micros
    required_micros: int = Field(gt=0, le=INT64_MAX)
    currency: CurrencyCode

    @model_validator(mode="after")
    def _balance_short(self) -> Self:
        if self.balance_micros >= self.required_micros:
            raise ValueError(
                f"balance {self.balance_micros} covers the required {self.required_micros}: not a refusal"
            )
        return self


class PlanFeeChargedPayload(Payload):
    """A recurring plan fee billed to the member's account for ``[period_start, period_end)`` (dates)."""

    plan_id: Identifier
    plan_type: PlanType
    period_start: IsoDate
    period_end: IsoDate
    charge_micros: Micros
    currency: CurrencyCode

    @model_validator(mode="after")
    def _period_forward(self) -> Self:
        if self.period_end <= self.period_start:
            raise ValueError(f"period_end {self.period_end} is not after period_start {self.period_start}")
        return self


class MemberActivatedPayload(Payload):
    """A subscription went live on the network."""

    plan_id: Identifier
    plan_type: PlanType
    served_msisdn: PartyNumber
    served_imsi: Imsi
    served_imei: Imei
    home_plmn_id: PlmnId


class PlanChangedPayload(Payload):
    """The member moved to another plan; a no-op change is not an event."""

    old_plan_id: Identifier
    new_plan_id: Identifier
    new_plan_type: PlanType

    @model_validator(mode="after")
    def _plan_differs(self) -> Self:
        if self.old_plan_id == self.new_plan_id:
            raise ValueError(f"old_plan_id and new_plan_id are both {self.old_plan_id!r}")
        return self


class PortOutRequestedPayload(Payload):
    """The member asked to take their number to another operator."""

    served_msisdn: PartyNumber
    recipient_operator: Identifier


class MemberDeactivatedPayload(Payload):
    """The subscription ended."""

    reason: DeactivationReason
