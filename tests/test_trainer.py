import pytest
import torch

from protoken.client.trainer import train_locally
from protoken.examples import encode
from protoken.models import load_model
from protoken.trainable import TrainableSpec, build_trainable, trainable_state
from protoken.v1 import federation_pb2 as pb


def _setup():
    loaded = load_model("tiny-llama")
    model = build_trainable(loaded.model, TrainableSpec(lora_rank=4), seed=0)
    examples = [encode(loaded.tokenizer, f"What is {i} times two?", f"It is {2 * i}.", 32) for i in range(16)]
    return model, examples, loaded.tokenizer.pad_token_id


def _hyper(**dp):
    return pb.Hyperparameters(local_steps=3, batch_size=4, learning_rate=1e-2, max_seq_len=32,
                              dp=pb.DifferentialPrivacy(**dp))


def _delta(model, before):
    after = trainable_state(model)
    return torch.cat([(after[k] - before[k]).flatten() for k in before])


def test_plain_training_reduces_loss_and_reports_metrics():
    model, examples, pad = _setup()
    hyper = pb.Hyperparameters(local_steps=8, batch_size=4, learning_rate=1e-2, max_seq_len=32)
    steps = []
    metrics = train_locally(model, examples, hyper, pad, seed=1, progress=lambda s, t, l: steps.append((s, t, l)))
    assert [s for s, _, _ in steps] == list(range(1, 9)) and all(t == 8 for _, t, _ in steps)
    assert steps[-1][2] < steps[0][2]
    assert metrics["steps"] == 8 and "dp_epsilon" not in metrics


def test_differential_privacy_clips_adds_noise_and_accounts():
    model, examples, pad = _setup()
    before = trainable_state(model)
    metrics = train_locally(model, examples, _hyper(enabled=True, noise_multiplier=1.0, max_grad_norm=0.5), pad,
                            seed=1, progress=lambda *a: None)
    assert metrics["dp_epsilon"] > 0 and metrics["dp_delta"] == pytest.approx(1 / 16)
    noisy = _delta(model, before)
    assert torch.isfinite(noisy).all() and noisy.abs().sum() > 0
    assert all(getattr(p, "grad_sample", None) is None for p in model.parameters()), "per-example gradients kept"
    model(torch.tensor([[1, 2, 3]]))  # the model still runs without the DP hooks

    quiet_model, _, _ = _setup()
    quiet = train_locally(quiet_model, examples, _hyper(enabled=True, noise_multiplier=0.5, max_grad_norm=0.5), pad,
                          seed=1, progress=lambda *a: None)
    more_noise = train_locally(_setup()[0], examples, _hyper(enabled=True, noise_multiplier=4.0, max_grad_norm=0.5),
                               pad, seed=1, progress=lambda *a: None)
    assert more_noise["dp_epsilon"] < quiet["dp_epsilon"]
