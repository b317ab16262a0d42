"""Instruction pairs as model inputs: chat-formatted tokens with the loss on the response only.

Training (client) and held-out evaluation (server) both use this, so the two measure the same
thing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE on prompt tokens


def prompt_ids(tokenizer: PreTrainedTokenizerBase, prompt: str) -> list[int]:
    """The chat-formatted prompt, ending where the assistant's answer starts."""
    if tokenizer.chat_template:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                            add_generation_prompt=True, tokenize=True)
        if not isinstance(ids, list):  # some versions return a BatchEncoding
            ids = ids["input_ids"]
        return list(ids)
    return tokenizer(f"Question: {prompt}\nAnswer:", add_special_tokens=True)["input_ids"]


def encode(tokenizer: PreTrainedTokenizerBase, prompt: str, response: str, max_len: int) -> Example:
    """Prompt + response + end-of-sequence, truncated to `max_len` keeping at least some response."""
    head = prompt_ids(tokenizer, prompt)
    tail = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    head = head[: max(1, max_len // 2)] if len(head) + len(tail) > max_len else head
    tail = tail[: max_len - len(head)]
    return Example(input_ids=head + tail, labels=[IGNORE] * len(head) + tail)


def encode_records(tokenizer: PreTrainedTokenizerBase, records: list[dict], max_len: int) -> list[Example]:
    return [encode(tokenizer, r["prompt"], r["response"], max_len) for r in records]


def collate(batch: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors; padding is masked out of attention and loss."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, example in enumerate(batch):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def sample_batches(examples: list[Example], batch_size: int, steps: int, seed: int) -> list[list[Example]]:
    """`steps` batches drawn by reshuffling epochs with a seeded generator."""
    rng = random.Random(seed)
    order: list[int] = []
    batches = []
    for _ in range(steps):
        batch = []
        while len(batch) < min(batch_size, len(examples)):
            if not order:
                order = list(range(len(examples)))
                rng.shuffle(order)
            batch.append(examples[order.pop()])
        batches.append(batch)
    return batches


def response_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor], reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy on the response tokens, computing vocabulary logits only where they are needed.

    The vocabulary projection dominates a small model's cost; prompt positions never need it.
    `reduction`: "mean" over all response tokens of the batch, "sum", or "per_example" (the mean
    over examples of each example's mean token loss, as per-example gradients need).
    """
    labels = batch["labels"]
    has_label = (labels != IGNORE).any(dim=0).nonzero()
    first = max(int(has_label[0]) if len(has_label) else 1, 1)
    keep = torch.arange(first - 1, labels.shape[1] - 1)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep).logits
    targets = labels[:, first:]
    if reduction != "per_example":
        return torch.nn.functional.cross_entropy(logits.transpose(1, 2).float(), targets, ignore_index=IGNORE,
                                                 reduction=reduction)
    losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2).float(), targets, ignore_index=IGNORE,
                                               reduction="none")
    counts = (targets != IGNORE).sum(dim=1).clamp(min=1)
    return (losses.sum(dim=1) / counts).mean()


@torch.no_grad()
def mean_loss(model: torch.nn.Module, examples: list[Example], pad_id: int, batch_size: int = 8) -> float:
    """Token-weighted mean cross-entropy on the response tokens."""
    total, tokens = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start:start + batch_size], pad_id)
        total += float(response_loss(model, batch, reduction="sum"))
        tokens += int((batch["labels"][:, 1:] != IGNORE).sum())
    return total / max(tokens, 1)
