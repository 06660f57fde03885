from collections.abc import Iterable as _Iterable
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar

from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper

DESCRIPTOR: _descriptor.FileDescriptor

class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KIND_UNSPECIFIED: _ClassVar[Kind]
    KIND_TRANSITIONS: _ClassVar[Kind]
    KIND_EPISODE: _ClassVar[Kind]
    KIND_WEIGHTS: _ClassVar[Kind]

class EpisodeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EPISODE_KIND_UNSPECIFIED: _ClassVar[EpisodeKind]
    EPISODE_KIND_TRAIN: _ClassVar[EpisodeKind]
    EPISODE_KIND_EVAL: _ClassVar[EpisodeKind]

KIND_UNSPECIFIED: Kind
KIND_TRANSITIONS: Kind
KIND_EPISODE: Kind
KIND_WEIGHTS: Kind
EPISODE_KIND_UNSPECIFIED: EpisodeKind
EPISODE_KIND_TRAIN: EpisodeKind
EPISODE_KIND_EVAL: EpisodeKind

class HandshakeRequest(_message.Message):
    __slots__ = (
        "actor_id",
        "arch_hash",
        "client_info",
        "previous_session_id",
        "run_id",
        "schema_version",
    )
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    ARCH_HASH_FIELD_NUMBER: _ClassVar[int]
    CLIENT_INFO_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    actor_id: str
    run_id: str
    schema_version: int
    arch_hash: str
    client_info: str
    previous_session_id: str
    def __init__(
        self,
        actor_id: str | None = ...,
        run_id: str | None = ...,
        schema_version: int | None = ...,
        arch_hash: str | None = ...,
        client_info: str | None = ...,
        previous_session_id: str | None = ...,
    ) -> None: ...

class HandshakeReply(_message.Message):
    __slots__ = (
        "accepted",
        "chunk_bytes",
        "durable_acks",
        "durable_sequence",
        "last_accepted_sequence",
        "last_acked_sequence",
        "learner_run_id",
        "max_payload_bytes",
        "reason",
        "retryable",
        "schema_version",
        "session_id",
    )
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    LEARNER_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    LAST_ACKED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    MAX_PAYLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    LAST_ACCEPTED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DURABLE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DURABLE_ACKS_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    reason: str
    retryable: bool
    session_id: str
    learner_run_id: str
    schema_version: int
    last_acked_sequence: int
    max_payload_bytes: int
    chunk_bytes: int
    last_accepted_sequence: int
    durable_sequence: int
    durable_acks: bool
    def __init__(
        self,
        accepted: bool | None = ...,
        reason: str | None = ...,
        retryable: bool | None = ...,
        session_id: str | None = ...,
        learner_run_id: str | None = ...,
        schema_version: int | None = ...,
        last_acked_sequence: int | None = ...,
        max_payload_bytes: int | None = ...,
        chunk_bytes: int | None = ...,
        last_accepted_sequence: int | None = ...,
        durable_sequence: int | None = ...,
        durable_acks: bool | None = ...,
    ) -> None: ...

class Frame(_message.Message):
    __slots__ = (
        "actor_id",
        "checksum",
        "chunk_count",
        "chunk_index",
        "data",
        "kind",
        "payload_length",
        "progress",
        "schema_version",
        "sequence",
    )
    KIND_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_LENGTH_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    kind: Kind
    schema_version: int
    actor_id: str
    sequence: int
    payload_length: int
    checksum: int
    chunk_index: int
    chunk_count: int
    data: bytes
    progress: LearnerProgress
    def __init__(
        self,
        kind: Kind | str | None = ...,
        schema_version: int | None = ...,
        actor_id: str | None = ...,
        sequence: int | None = ...,
        payload_length: int | None = ...,
        checksum: int | None = ...,
        chunk_index: int | None = ...,
        chunk_count: int | None = ...,
        data: bytes | None = ...,
        progress: LearnerProgress | _Mapping | None = ...,
    ) -> None: ...

class LearnerProgress(_message.Message):
    __slots__ = ("env_steps", "step_allowance", "updates")
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    ENV_STEPS_FIELD_NUMBER: _ClassVar[int]
    STEP_ALLOWANCE_FIELD_NUMBER: _ClassVar[int]
    updates: int
    env_steps: int
    step_allowance: int
    def __init__(
        self,
        updates: int | None = ...,
        env_steps: int | None = ...,
        step_allowance: int | None = ...,
    ) -> None: ...

class EpisodeRecord(_message.Message):
    __slots__ = (
        "episode_index",
        "episode_return",
        "extra",
        "interrupted",
        "intervention_steps",
        "kind",
        "length",
        "operator_takeover",
        "policy_version",
        "success",
    )
    class ExtraEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: str | None = ..., value: float | None = ...) -> None: ...

    EPISODE_INDEX_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    EPISODE_RETURN_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    INTERVENTION_STEPS_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTED_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_TAKEOVER_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    episode_index: int
    length: int
    episode_return: float
    success: bool
    intervention_steps: int
    policy_version: int
    kind: EpisodeKind
    interrupted: bool
    operator_takeover: bool
    extra: _containers.ScalarMap[str, float]
    def __init__(
        self,
        episode_index: int | None = ...,
        length: int | None = ...,
        episode_return: float | None = ...,
        success: bool | None = ...,
        intervention_steps: int | None = ...,
        policy_version: int | None = ...,
        kind: EpisodeKind | str | None = ...,
        interrupted: bool | None = ...,
        operator_takeover: bool | None = ...,
        extra: _Mapping[str, float] | None = ...,
    ) -> None: ...

class Ack(_message.Message):
    __slots__ = ("acked_through", "durable_through", "rejected")
    ACKED_THROUGH_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    DURABLE_THROUGH_FIELD_NUMBER: _ClassVar[int]
    acked_through: int
    rejected: _containers.RepeatedCompositeFieldContainer[Rejection]
    durable_through: int
    def __init__(
        self,
        acked_through: int | None = ...,
        rejected: _Iterable[Rejection | _Mapping] | None = ...,
        durable_through: int | None = ...,
    ) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("reason", "sequence")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    reason: str
    def __init__(self, sequence: int | None = ..., reason: str | None = ...) -> None: ...

class ParameterRequest(_message.Message):
    __slots__ = ("have_version",)
    HAVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    have_version: int
    def __init__(self, have_version: int | None = ...) -> None: ...
