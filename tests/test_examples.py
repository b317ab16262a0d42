import pytest
import torch

from protoken.examples import IGNORE, collate, encode, response_loss, sample_batches
from protoken.models import load_model


@pytest.mark.parametrize("spec", ["tiny-llama", "tiny-gemma3"])
def test_response_loss_equals_full_logits_loss(spec):
    loaded = load_model(spec)
    pairs = [("What is 2+2?", "Four."), ("Name a prime number larger than ten.", "Eleven is prime."),
             ("Say hi", "Hello there, how are you today?")]
    batch = collate([encode(loaded.tokenizer, p, r, 64) for p, r in pairs], loaded.tokenizer.pad_token_id)
    full = loaded.model(**batch).loss
    torch.testing.assert_close(response_loss(loaded.model, batch), full, rtol=1e-5, atol=1e-5)


def test_loss_covers_response_only_and_truncates():
    loaded = load_model("tiny-llama")
    example = encode(loaded.tokenizer, "A question " * 5, "An answer " * 100, max_len=40)
    assert len(example.input_ids) == 40
    prompt_len = example.labels.count(IGNORE)
    assert prompt_len > 0 and all(label != IGNORE for label in example.labels[prompt_len:])
    assert example.labels[prompt_len:] == example.input_ids[prompt_len:]


def test_batches_are_seeded():
    items = list(range(10))
    assert sample_batches(items, 4, 5, seed=3) == sample_batches(items, 4, 5, seed=3)
    assert sample_batches(items, 4, 5, seed=3) != sample_batches(items, 4, 5, seed=4)
    assert all(len(b) == 4 for b in sample_batches(items, 4, 5, seed=3))
