from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CODE_UNSPECIFIED: _ClassVar[ErrorCode]
    ERROR_CODE_INVALID_ARGUMENT: _ClassVar[ErrorCode]
    ERROR_CODE_UNAUTHENTICATED: _ClassVar[ErrorCode]
    ERROR_CODE_UNKNOWN_ROUND: _ClassVar[ErrorCode]
    ERROR_CODE_CHECKSUM_MISMATCH: _ClassVar[ErrorCode]
    ERROR_CODE_POLICY_REFUSED: _ClassVar[ErrorCode]
    ERROR_CODE_INTERNAL: _ClassVar[ErrorCode]
    ERROR_CODE_SESSION_REPLACED: _ClassVar[ErrorCode]

class DType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTYPE_UNSPECIFIED: _ClassVar[DType]
    DTYPE_FLOAT32: _ClassVar[DType]
    DTYPE_FLOAT16: _ClassVar[DType]
    DTYPE_BFLOAT16: _ClassVar[DType]
    DTYPE_FLOAT64: _ClassVar[DType]
    DTYPE_INT64: _ClassVar[DType]

class TrainingMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINING_MODE_UNSPECIFIED: _ClassVar[TrainingMode]
    TRAINING_MODE_LORA: _ClassVar[TrainingMode]
    TRAINING_MODE_FULL: _ClassVar[TrainingMode]

class ScoringMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCORING_MODE_UNSPECIFIED: _ClassVar[ScoringMode]
    SCORING_MODE_CALIBRATED: _ClassVar[ScoringMode]
    SCORING_MODE_PAPER: _ClassVar[ScoringMode]
    SCORING_MODE_NO_GRADIENT: _ClassVar[ScoringMode]
ERROR_CODE_UNSPECIFIED: ErrorCode
ERROR_CODE_INVALID_ARGUMENT: ErrorCode
ERROR_CODE_UNAUTHENTICATED: ErrorCode
ERROR_CODE_UNKNOWN_ROUND: ErrorCode
ERROR_CODE_CHECKSUM_MISMATCH: ErrorCode
ERROR_CODE_POLICY_REFUSED: ErrorCode
ERROR_CODE_INTERNAL: ErrorCode
ERROR_CODE_SESSION_REPLACED: ErrorCode
DTYPE_UNSPECIFIED: DType
DTYPE_FLOAT32: DType
DTYPE_FLOAT16: DType
DTYPE_BFLOAT16: DType
DTYPE_FLOAT64: DType
DTYPE_INT64: DType
TRAINING_MODE_UNSPECIFIED: TrainingMode
TRAINING_MODE_LORA: TrainingMode
TRAINING_MODE_FULL: TrainingMode
SCORING_MODE_UNSPECIFIED: ScoringMode
SCORING_MODE_CALIBRATED: ScoringMode
SCORING_MODE_PAPER: ScoringMode
SCORING_MODE_NO_GRADIENT: ScoringMode

class Error(_message.Message):
    __slots__ = ("code", "message", "field")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    code: ErrorCode
    message: str
    field: str
    def __init__(self, code: _Optional[_Union[ErrorCode, str]] = ..., message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class PayloadChunk(_message.Message):
    __slots__ = ("index", "count", "total_bytes", "sha256", "data")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    index: int
    count: int
    total_bytes: int
    sha256: str
    data: bytes
    def __init__(self, index: _Optional[int] = ..., count: _Optional[int] = ..., total_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class Tensor(_message.Message):
    __slots__ = ("dtype", "shape", "data")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    dtype: DType
    shape: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    def __init__(self, dtype: _Optional[_Union[DType, str]] = ..., shape: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ...) -> None: ...

class Capabilities(_message.Message):
    __slots__ = ("training_modes", "differential_privacy", "attribution_probes", "num_examples")
    TRAINING_MODES_FIELD_NUMBER: _ClassVar[int]
    DIFFERENTIAL_PRIVACY_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_PROBES_FIELD_NUMBER: _ClassVar[int]
    NUM_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    training_modes: _containers.RepeatedScalarFieldContainer[TrainingMode]
    differential_privacy: bool
    attribution_probes: bool
    num_examples: int
    def __init__(self, training_modes: _Optional[_Iterable[_Union[TrainingMode, str]]] = ..., differential_privacy: _Optional[bool] = ..., attribution_probes: _Optional[bool] = ..., num_examples: _Optional[int] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("client_version", "capabilities", "base_fingerprint")
    CLIENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    BASE_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    client_version: str
    capabilities: Capabilities
    base_fingerprint: str
    def __init__(self, client_version: _Optional[str] = ..., capabilities: _Optional[_Union[Capabilities, _Mapping]] = ..., base_fingerprint: _Optional[str] = ...) -> None: ...

class RegisterReply(_message.Message):
    __slots__ = ("client_id", "session_id", "model", "base_fingerprint", "heartbeat_interval_ms")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BASE_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    session_id: str
    model: str
    base_fingerprint: str
    heartbeat_interval_ms: int
    def __init__(self, client_id: _Optional[str] = ..., session_id: _Optional[str] = ..., model: _Optional[str] = ..., base_fingerprint: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class LoraSettings(_message.Message):
    __slots__ = ("rank", "alpha", "dropout", "target_modules")
    RANK_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    DROPOUT_FIELD_NUMBER: _ClassVar[int]
    TARGET_MODULES_FIELD_NUMBER: _ClassVar[int]
    rank: int
    alpha: float
    dropout: float
    target_modules: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, rank: _Optional[int] = ..., alpha: _Optional[float] = ..., dropout: _Optional[float] = ..., target_modules: _Optional[_Iterable[str]] = ...) -> None: ...

class DifferentialPrivacy(_message.Message):
    __slots__ = ("enabled", "noise_multiplier", "max_grad_norm")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    NOISE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    MAX_GRAD_NORM_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    noise_multiplier: float
    max_grad_norm: float
    def __init__(self, enabled: _Optional[bool] = ..., noise_multiplier: _Optional[float] = ..., max_grad_norm: _Optional[float] = ...) -> None: ...

class Hyperparameters(_message.Message):
    __slots__ = ("mode", "lora", "local_steps", "batch_size", "learning_rate", "warmup_steps", "max_seq_len", "weight_decay", "seed", "dp")
    MODE_FIELD_NUMBER: _ClassVar[int]
    LORA_FIELD_NUMBER: _ClassVar[int]
    LOCAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    WARMUP_STEPS_FIELD_NUMBER: _ClassVar[int]
    MAX_SEQ_LEN_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    DP_FIELD_NUMBER: _ClassVar[int]
    mode: TrainingMode
    lora: LoraSettings
    local_steps: int
    batch_size: int
    learning_rate: float
    warmup_steps: int
    max_seq_len: int
    weight_decay: float
    seed: int
    dp: DifferentialPrivacy
    def __init__(self, mode: _Optional[_Union[TrainingMode, str]] = ..., lora: _Optional[_Union[LoraSettings, _Mapping]] = ..., local_steps: _Optional[int] = ..., batch_size: _Optional[int] = ..., learning_rate: _Optional[float] = ..., warmup_steps: _Optional[int] = ..., max_seq_len: _Optional[int] = ..., weight_decay: _Optional[float] = ..., seed: _Optional[int] = ..., dp: _Optional[_Union[DifferentialPrivacy, _Mapping]] = ...) -> None: ...

class TrainTask(_message.Message):
    __slots__ = ("round", "task_id", "hyperparameters", "weights_chunks", "deadline_unix_ms")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    round: int
    task_id: str
    hyperparameters: Hyperparameters
    weights_chunks: int
    deadline_unix_ms: int
    def __init__(self, round: _Optional[int] = ..., task_id: _Optional[str] = ..., hyperparameters: _Optional[_Union[Hyperparameters, _Mapping]] = ..., weights_chunks: _Optional[int] = ..., deadline_unix_ms: _Optional[int] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("train", "weights_chunk", "probe", "error")
    TRAIN_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_CHUNK_FIELD_NUMBER: _ClassVar[int]
    PROBE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    train: TrainTask
    weights_chunk: PayloadChunk
    probe: ProbeRequest
    error: Error
    def __init__(self, train: _Optional[_Union[TrainTask, _Mapping]] = ..., weights_chunk: _Optional[_Union[PayloadChunk, _Mapping]] = ..., probe: _Optional[_Union[ProbeRequest, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class UpdateHeader(_message.Message):
    __slots__ = ("round", "task_id", "num_examples", "metrics", "declined")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ROUND_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NUM_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    DECLINED_FIELD_NUMBER: _ClassVar[int]
    round: int
    task_id: str
    num_examples: int
    metrics: _containers.ScalarMap[str, float]
    declined: str
    def __init__(self, round: _Optional[int] = ..., task_id: _Optional[str] = ..., num_examples: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ..., declined: _Optional[str] = ...) -> None: ...

class UploadMessage(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UpdateHeader
    chunk: PayloadChunk
    def __init__(self, header: _Optional[_Union[UpdateHeader, _Mapping]] = ..., chunk: _Optional[_Union[PayloadChunk, _Mapping]] = ...) -> None: ...

class UploadReply(_message.Message):
    __slots__ = ("accepted", "error")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    error: Error
    def __init__(self, accepted: _Optional[bool] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("session_id", "round", "step", "total_steps", "phase", "loss")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    round: int
    step: int
    total_steps: int
    phase: str
    loss: float
    def __init__(self, session_id: _Optional[str] = ..., round: _Optional[int] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., phase: _Optional[str] = ..., loss: _Optional[float] = ...) -> None: ...

class HeartbeatReply(_message.Message):
    __slots__ = ("known_session",)
    KNOWN_SESSION_FIELD_NUMBER: _ClassVar[int]
    known_session: bool
    def __init__(self, known_session: _Optional[bool] = ...) -> None: ...

class ModuleProbe(_message.Message):
    __slots__ = ("module", "x", "g", "target_ids")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    G_FIELD_NUMBER: _ClassVar[int]
    TARGET_IDS_FIELD_NUMBER: _ClassVar[int]
    module: str
    x: Tensor
    g: Tensor
    target_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, module: _Optional[str] = ..., x: _Optional[_Union[Tensor, _Mapping]] = ..., g: _Optional[_Union[Tensor, _Mapping]] = ..., target_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class ProbeRequest(_message.Message):
    __slots__ = ("probe_id", "round", "modules", "deadline_unix_ms", "num_tokens")
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    NUM_TOKENS_FIELD_NUMBER: _ClassVar[int]
    probe_id: str
    round: int
    modules: _containers.RepeatedCompositeFieldContainer[ModuleProbe]
    deadline_unix_ms: int
    num_tokens: int
    def __init__(self, probe_id: _Optional[str] = ..., round: _Optional[int] = ..., modules: _Optional[_Iterable[_Union[ModuleProbe, _Mapping]]] = ..., deadline_unix_ms: _Optional[int] = ..., num_tokens: _Optional[int] = ...) -> None: ...

class ProbeAnswer(_message.Message):
    __slots__ = ("probe_id", "scores", "error", "compute_seconds")
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    probe_id: str
    scores: Tensor
    error: Error
    compute_seconds: float
    def __init__(self, probe_id: _Optional[str] = ..., scores: _Optional[_Union[Tensor, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., compute_seconds: _Optional[float] = ...) -> None: ...

class ProbeAnswerReply(_message.Message):
    __slots__ = ("accepted", "error")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    error: Error
    def __init__(self, accepted: _Optional[bool] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class AttributeRequest(_message.Message):
    __slots__ = ("prompt", "round", "max_new_tokens", "mode")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    round: int
    max_new_tokens: int
    mode: ScoringMode
    def __init__(self, prompt: _Optional[str] = ..., round: _Optional[int] = ..., max_new_tokens: _Optional[int] = ..., mode: _Optional[_Union[ScoringMode, str]] = ...) -> None: ...

class ClientShare(_message.Message):
    __slots__ = ("client_id", "probability", "score")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    probability: float
    score: float
    def __init__(self, client_id: _Optional[str] = ..., probability: _Optional[float] = ..., score: _Optional[float] = ...) -> None: ...

class TokenProvenance(_message.Message):
    __slots__ = ("position", "token_id", "text", "shares", "responsible_client")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    RESPONSIBLE_CLIENT_FIELD_NUMBER: _ClassVar[int]
    position: int
    token_id: int
    text: str
    shares: _containers.RepeatedCompositeFieldContainer[ClientShare]
    responsible_client: str
    def __init__(self, position: _Optional[int] = ..., token_id: _Optional[int] = ..., text: _Optional[str] = ..., shares: _Optional[_Iterable[_Union[ClientShare, _Mapping]]] = ..., responsible_client: _Optional[str] = ...) -> None: ...

class ResponseProvenance(_message.Message):
    __slots__ = ("round", "response", "shares", "traced_client", "clients_answered", "clients_asked", "missing_clients", "timings", "mode", "modules", "prompt", "probe_bytes", "answer_bytes", "uncalibrated_clients", "objective")
    class TimingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ROUND_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    TRACED_CLIENT_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_ASKED_FIELD_NUMBER: _ClassVar[int]
    MISSING_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    PROBE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ANSWER_BYTES_FIELD_NUMBER: _ClassVar[int]
    UNCALIBRATED_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    round: int
    response: str
    shares: _containers.RepeatedCompositeFieldContainer[ClientShare]
    traced_client: str
    clients_answered: int
    clients_asked: int
    missing_clients: _containers.RepeatedScalarFieldContainer[str]
    timings: _containers.ScalarMap[str, float]
    mode: ScoringMode
    modules: _containers.RepeatedScalarFieldContainer[str]
    prompt: str
    probe_bytes: int
    answer_bytes: int
    uncalibrated_clients: _containers.RepeatedScalarFieldContainer[str]
    objective: str
    def __init__(self, round: _Optional[int] = ..., response: _Optional[str] = ..., shares: _Optional[_Iterable[_Union[ClientShare, _Mapping]]] = ..., traced_client: _Optional[str] = ..., clients_answered: _Optional[int] = ..., clients_asked: _Optional[int] = ..., missing_clients: _Optional[_Iterable[str]] = ..., timings: _Optional[_Mapping[str, float]] = ..., mode: _Optional[_Union[ScoringMode, str]] = ..., modules: _Optional[_Iterable[str]] = ..., prompt: _Optional[str] = ..., probe_bytes: _Optional[int] = ..., answer_bytes: _Optional[int] = ..., uncalibrated_clients: _Optional[_Iterable[str]] = ..., objective: _Optional[str] = ...) -> None: ...

class AttributionEvent(_message.Message):
    __slots__ = ("token", "summary")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    token: TokenProvenance
    summary: ResponseProvenance
    def __init__(self, token: _Optional[_Union[TokenProvenance, _Mapping]] = ..., summary: _Optional[_Union[ResponseProvenance, _Mapping]] = ...) -> None: ...

class RoundsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RoundInfo(_message.Message):
    __slots__ = ("round", "participants", "metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ROUND_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    round: int
    participants: _containers.RepeatedScalarFieldContainer[str]
    metrics: _containers.ScalarMap[str, float]
    def __init__(self, round: _Optional[int] = ..., participants: _Optional[_Iterable[str]] = ..., metrics: _Optional[_Mapping[str, float]] = ...) -> None: ...

class RoundsReply(_message.Message):
    __slots__ = ("rounds",)
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    rounds: _containers.RepeatedCompositeFieldContainer[RoundInfo]
    def __init__(self, rounds: _Optional[_Iterable[_Union[RoundInfo, _Mapping]]] = ...) -> None: ...
