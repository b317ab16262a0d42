"""Persistence of completed rounds: global weights as safetensors, an SQLite index.

A round directory is written under a temporary name and renamed into place, then recorded in
the index in one transaction; the index is the source of truth, so a crash at any point leaves
either the previous state or the new round, never half of one.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from protoken.checksums import file_sha256
from protoken.errors import UserError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY,
    directory TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    participants TEXT NOT NULL,
    metrics TEXT NOT NULL,
    completed_at REAL NOT NULL
);
"""
WEIGHTS_FILE = "global.safetensors"


@dataclass
class RoundRecord:
    round: int
    directory: Path
    sha256: str
    participants: list[str]
    metrics: dict[str, float]
    completed_at: float


class StateStore:
    """The server's state directory. Round 0 is the initial global model."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._db_path = self.root / "index.sqlite"
        self._lock_fd: int | None = None

    def _take_writer_lock(self) -> None:
        """One server writes a state directory; the lock goes with the process, however it ends."""
        fd = os.open(self.root / "writer.lock", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(f"state directory {self.root} is in use by another server") from None
        self._lock_fd = fd

    def close(self) -> None:
        """Give up the writer lock (a process that ends gives it up anyway)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- creation and resumption -------------------------------------------------------------

    @classmethod
    def create(cls, root: Path, meta: dict[str, str]) -> "StateStore":
        """A fresh state directory; refuses one that already holds rounds (use resume)."""
        store = cls(root)
        if store._db_path.exists():
            raise UserError(f"state directory {root} already holds a federation: "
                            "pass --resume to continue it, or choose another --state-dir")
        try:
            store.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the state directory {root}: {exc.strerror}") from exc
        store._take_writer_lock()
        with store._connect() as db:
            db.executescript(_SCHEMA)
            db.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
        return store

    @classmethod
    def open_for_resume(cls, root: Path, meta: dict[str, str]) -> "StateStore":
        """Check the state directory end to end before anything is written to it."""
        store = cls(root)
        if not store._db_path.exists():
            raise UserError(f"cannot resume: {store._db_path} does not exist")
        try:
            db = sqlite3.connect(f"file:{store._db_path}?mode=ro", uri=True)
            try:
                stored_meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
                count = db.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise UserError(f"cannot resume: the index {store._db_path} is unreadable ({exc})") from exc
        for key, value in meta.items():
            if stored_meta.get(key) != value:
                raise UserError(f"cannot resume: the state directory was made with {key}="
                                f"{stored_meta.get(key)!r}, the config asks for {value!r}")
        if count == 0:
            raise UserError(f"cannot resume: {root} holds no completed round")
        for record in store.rounds():  # every completed round stays attributable
            store.verify_weights(record)
        store._take_writer_lock()
        return store

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._db_path)

    # -- rounds --------------------------------------------------------------------------------

    def save_round(self, round_number: int, weights: dict[str, torch.Tensor],
                   participants: list[str], metrics: dict[str, float]) -> RoundRecord:
        rounds_dir = self.root / "rounds"
        rounds_dir.mkdir(exist_ok=True)
        final = rounds_dir / f"{round_number:06d}"
        tmp = rounds_dir / f".tmp-{round_number:06d}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_file({k: v.contiguous() for k, v in weights.items()}, str(tmp / WEIGHTS_FILE))
        record = {"round": round_number, "participants": participants, "metrics": metrics}
        (tmp / "round.json").write_text(json.dumps(record, indent=2, sort_keys=True))
        for path in (tmp / WEIGHTS_FILE, tmp / "round.json"):
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        sha = file_sha256(tmp / WEIGHTS_FILE)
        shutil.rmtree(final, ignore_errors=True)  # an orphan from a crash before it was indexed
        os.rename(tmp, final)
        completed_at = time.time()
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO rounds VALUES (?, ?, ?, ?, ?, ?)",
                       (round_number, final.name, sha, json.dumps(participants),
                        json.dumps(metrics, sort_keys=True), completed_at))
        return RoundRecord(round_number, final, sha, participants, metrics, completed_at)

    def rounds(self) -> list[RoundRecord]:
        with self._connect() as db:
            rows = db.execute("SELECT round, directory, sha256, participants, metrics, completed_at "
                              "FROM rounds ORDER BY round").fetchall()
        return [RoundRecord(r, self.root / "rounds" / d, sha, json.loads(p), json.loads(m), t)
                for r, d, sha, p, m, t in rows]

    def latest(self) -> RoundRecord:
        records = self.rounds()
        if not records:
            raise UserError(f"{self.root} holds no completed round")
        return records[-1]

    def get(self, round_number: int) -> RoundRecord | None:
        return next((r for r in self.rounds() if r.round == round_number), None)

    def load_weights(self, record: RoundRecord) -> dict[str, torch.Tensor]:
        path = self.verify_weights(record)
        try:
            return load_file(str(path))
        except SafetensorError as exc:
            raise UserError(f"round {record.round}'s weights at {path} are unreadable: {exc}") from exc

    def verify_weights(self, record: RoundRecord) -> Path:
        """The round's weights file, after checking it against its recorded checksum."""
        path = record.directory / WEIGHTS_FILE
        try:
            sha = file_sha256(path)
        except OSError as exc:
            raise UserError(f"cannot read round {record.round}'s weights at {path}: {exc.strerror}") from exc
        if sha != record.sha256:
            raise UserError(f"round {record.round}'s weights at {path} do not match their recorded checksum")
        return path
