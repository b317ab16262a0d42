import sqlite3

import pytest
import torch

from protoken.errors import UserError
from protoken.server.state import StateStore

META = {"model": "tiny-llama", "base_fingerprint": "abc"}


def test_rounds_persist_and_resume(tmp_path):
    store = StateStore.create(tmp_path / "s", META)
    store.save_round(0, {"w": torch.zeros(3)}, [], {})
    store.save_round(1, {"w": torch.ones(3)}, ["a", "b"], {"loss": 1.5})
    with pytest.raises(UserError, match="in use by another server"):
        StateStore.open_for_resume(tmp_path / "s", META)
    store.close()
    resumed = StateStore.open_for_resume(tmp_path / "s", META)
    latest = resumed.latest()
    assert latest.round == 1 and latest.participants == ["a", "b"] and latest.metrics == {"loss": 1.5}
    assert torch.equal(resumed.load_weights(latest)["w"], torch.ones(3))
    with pytest.raises(UserError, match="already holds a federation"):
        StateStore.create(tmp_path / "s", META)


def _snapshot(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_resume_refuses_unreadable_state_and_changes_nothing(tmp_path):
    root = tmp_path / "s"
    with pytest.raises(UserError, match="does not exist"):
        StateStore.open_for_resume(root, META)
    store = StateStore.create(root, META)
    store.save_round(0, {"w": torch.zeros(3)}, [], {})
    with pytest.raises(UserError, match="model='tiny-llama'"):
        StateStore.open_for_resume(root, {**META, "model": "tiny-qwen2"})
    weights = store.latest().directory / "global.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"XXXX")
    before = _snapshot(root)
    with pytest.raises(UserError, match="recorded checksum"):
        StateStore.open_for_resume(root, META)
    (root / "index.sqlite").write_bytes(b"not a database at all" * 10)
    before = _snapshot(root)
    with pytest.raises(UserError, match="unreadable"):
        StateStore.open_for_resume(root, META)
    assert _snapshot(root) == before


def test_orphan_round_directory_is_replaced(tmp_path):
    store = StateStore.create(tmp_path / "s", META)
    orphan = tmp_path / "s" / "rounds" / "000001"
    orphan.mkdir(parents=True)
    (orphan / "junk").write_text("left by a crash before indexing")
    store.save_round(1, {"w": torch.ones(2)}, ["a"], {})
    assert not (orphan / "junk").exists()
    with sqlite3.connect(tmp_path / "s" / "index.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM rounds").fetchone()[0] == 1


def test_resume_checks_every_round_not_only_the_latest(tmp_path):
    store = StateStore.create(tmp_path / "s", META)
    for number in range(3):
        store.save_round(number, {"w": torch.full((3,), float(number))}, ["a"] if number else [], {})
    store.close()
    middle = store.get(1).directory / "global.safetensors"
    middle.write_bytes(middle.read_bytes()[:-4] + b"XXXX")
    with pytest.raises(UserError, match="round 1's weights .* recorded checksum"):
        StateStore.open_for_resume(tmp_path / "s", META)
    middle.unlink()
    with pytest.raises(UserError, match="cannot read round 1's weights"):
        StateStore.open_for_resume(tmp_path / "s", META)
