"""The federation's configuration: one TOML file, command-line overrides, strict validation.

Every key is declared with its type in a dataclass; an unknown key, a wrong type or an
out-of-range value is a `UserError` that names the key (``training.batch_size``).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from protoken.errors import UserError
from protoken.models import DEFAULT_MODEL
from protoken.trainable import FULL, LORA, TrainableSpec


@dataclass
class FederationSection:
    address: str = "127.0.0.1:50051"
    model: str = DEFAULT_MODEL
    min_clients: int = 2
    rounds: int = 3
    clients_per_round: int = 2
    quorum: float = 0.5          # fraction of the sampled clients whose updates complete a round
    round_timeout_s: float = 900.0
    wait_timeout_s: float = 600.0  # how long a round waits for min_clients to be connected
    seed: int = 0
    state_dir: str = "runs/server"
    credentials: str = "credentials.toml"  # client id -> sha256 of its secret
    serve_after_training: bool = False     # keep answering attribution queries after the last round


@dataclass
class TrainingSection:
    mode: str = LORA
    local_steps: int = 10
    batch_size: int = 8
    learning_rate: float = 2e-3
    warmup_steps: int = 2
    max_seq_len: int = 128
    weight_decay: float = 0.0


@dataclass
class LoraSection:
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])


@dataclass
class PrivacySection:
    enabled: bool = False
    noise_multiplier: float = 1.0
    max_grad_norm: float = 1.0


@dataclass
class EvaluationSection:
    heldout_dir: str = ""        # a dataset directory with <domain>/heldout.jsonl; empty: no evaluation
    examples_per_domain: int = 16


@dataclass
class TlsSection:
    enabled: bool = False
    ca: str = ""
    cert: str = ""
    key: str = ""
    require_client_cert: bool = True


@dataclass
class AttributionSection:
    probe_timeout_s: float = 60.0
    wire_dtype: str = "float32"          # precision of probe tensors on the wire: float32 or float16
    mode: str = "calibrated"             # calibrated | paper | no-gradient
    max_new_tokens: int = 32
    objective: str = "logit"             # what relevance differentiates: logit (the paper's) or log-prob
    layers: list[str] = field(default_factory=list)  # "PATTERN[:COUNT]" rules; empty: the method's defaults
    reference_prompts: str = ""          # file to calibrate on: prompts (one per line) or JSONL prompt[+response]
    threshold: float = 3.0               # standard score a client must exceed to stand out


@dataclass
class FederationConfig:
    federation: FederationSection = field(default_factory=FederationSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    lora: LoraSection = field(default_factory=LoraSection)
    privacy: PrivacySection = field(default_factory=PrivacySection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    tls: TlsSection = field(default_factory=TlsSection)
    attribution: AttributionSection = field(default_factory=AttributionSection)

    def trainable_spec(self) -> TrainableSpec:
        return TrainableSpec(mode=self.training.mode, lora_rank=self.lora.rank, lora_alpha=self.lora.alpha,
                             lora_dropout=self.lora.dropout, target_modules=tuple(self.lora.target_modules))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(key: str, value: Any, expected: Any) -> Any:
    if expected is bool:
        if isinstance(value, bool):
            return value
    elif expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise UserError(f"config key {key}: must be a finite number, got {value!r}")
            return float(value)
    elif expected is str:
        if isinstance(value, str):
            return value
    elif expected == list[str]:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    type_name = getattr(expected, "__name__", str(expected))
    raise UserError(f"config key {key}: expected {type_name}, got {value!r}")


def _apply(config: FederationConfig, data: dict[str, Any], origin: str) -> None:
    sections = {f.name: f for f in dataclasses.fields(config)}
    for section_name, values in data.items():
        if section_name not in sections:
            raise UserError(f"{origin}: unknown config section [{section_name}] "
                            f"(known: {', '.join(sections)})")
        if not isinstance(values, dict):
            raise UserError(f"{origin}: [{section_name}] must be a table")
        section = getattr(config, section_name)
        hints = get_type_hints(type(section))
        for key, value in values.items():
            dotted = f"{section_name}.{key}"
            if key not in hints:
                raise UserError(f"{origin}: unknown config key {dotted} (known: {', '.join(hints)})")
            setattr(section, key, _coerce(dotted, value, hints[key]))


ADDRESS_RULE = "must be HOST:PORT with a port in 0..65535"


def valid_address(address: str) -> bool:
    """HOST:PORT with a port number in 0..65535."""
    host, _, port = address.rpartition(":")
    return bool(host) and port.isdigit() and int(port) <= 65535


def check_server_address(address: str) -> None:
    """A `--server` value, or a UserError saying what it must look like."""
    if not valid_address(address):
        raise UserError(f"--server {address!r} {ADDRESS_RULE}")


def _validate(config: FederationConfig) -> None:
    f, t = config.federation, config.training
    checks = [
        (f.min_clients >= 1, "federation.min_clients", "must be at least 1"),
        (f.rounds >= 1, "federation.rounds", "must be at least 1"),
        (f.clients_per_round >= 1, "federation.clients_per_round", "must be at least 1"),
        (0.0 < f.quorum <= 1.0, "federation.quorum", "must be a fraction in (0, 1]"),
        (f.round_timeout_s > 0, "federation.round_timeout_s", "must be positive"),
        (f.wait_timeout_s > 0, "federation.wait_timeout_s", "must be positive"),
        (valid_address(f.address), "federation.address", ADDRESS_RULE),
        (t.mode in (LORA, FULL), "training.mode", f"must be {LORA!r} or {FULL!r}"),
        (t.local_steps >= 1, "training.local_steps", "must be at least 1"),
        (t.batch_size >= 1, "training.batch_size", "must be at least 1"),
        (t.learning_rate > 0, "training.learning_rate", "must be positive"),
        (t.warmup_steps >= 0, "training.warmup_steps", "must not be negative"),
        (t.max_seq_len >= 8, "training.max_seq_len", "must be at least 8"),
        (t.weight_decay >= 0, "training.weight_decay", "must not be negative"),
        (config.lora.rank >= 1, "lora.rank", "must be at least 1"),
        (config.lora.alpha > 0, "lora.alpha", "must be positive"),
        (0.0 <= config.lora.dropout < 1.0, "lora.dropout", "must be a probability in [0, 1)"),
        (config.privacy.noise_multiplier >= 0, "privacy.noise_multiplier", "must not be negative"),
        (config.privacy.max_grad_norm > 0, "privacy.max_grad_norm", "must be positive"),
        (config.evaluation.examples_per_domain >= 1, "evaluation.examples_per_domain", "must be at least 1"),
        (bool(config.lora.target_modules), "lora.target_modules", "must name at least one module"),
        (config.attribution.wire_dtype in ("float32", "float16"), "attribution.wire_dtype",
         "must be 'float32' or 'float16'"),
        (config.attribution.probe_timeout_s > 0, "attribution.probe_timeout_s", "must be positive"),
        (config.attribution.mode in ("calibrated", "paper", "no-gradient"), "attribution.mode",
         "must be 'calibrated', 'paper' or 'no-gradient'"),
        (1 <= config.attribution.max_new_tokens <= 1024, "attribution.max_new_tokens", "must be in 1..1024"),
        (config.attribution.objective in ("logit", "log-prob"), "attribution.objective",
         "must be 'logit' or 'log-prob'"),
    ]
    for ok, key, message in checks:
        if not ok:
            raise UserError(f"config key {key} {message}")


def parse_override(text: str) -> tuple[str, str, Any]:
    """``section.key=value`` with a TOML value (bare words are taken as strings)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise UserError(f"override {text!r} must look like section.key=value")
    dotted, raw = text.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return section, key, value


def load_config(path: Path | None, overrides: list[str] = (),
                values: dict[str, dict[str, Any]] | None = None) -> FederationConfig:
    """Read a TOML file (or start from defaults), apply `section.key=value` overrides, then `values`
    (typed values from command-line flags, taken as they are), and validate."""
    config = FederationConfig()
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise UserError(f"cannot read config {path}: {exc.strerror}") from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"config {path} is not valid TOML: {exc}") from exc
        _apply(config, data, str(path))
    for text in overrides:
        section, key, value = parse_override(text)
        _apply(config, {section: {key: value}}, "override")
    if values:
        _apply(config, values, "command line")
    _validate(config)
    return config


def dump_config(config: FederationConfig) -> str:
    """TOML text for a config (what `load_config` reads back)."""
    lines: list[str] = []
    for section, values in config.to_dict().items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
