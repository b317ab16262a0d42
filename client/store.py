"""The client's own models: the trainable state it produced in every round it took part in."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from protoken.checksums import file_sha256
from protoken.errors import UserError

STATE_FILE = "state.safetensors"
OWNER_FILE = "client-id"


class DamagedState(RuntimeError):
    """A round's saved state is missing, unreadable or not what was written."""


class LocalModelStore:
    """Round models under `root`, which belongs to one client: another client's directory is refused."""

    def __init__(self, root: Path, client_id: str) -> None:
        self.root = Path(root)
        self._verified: dict[int, tuple[int, int]] = {}  # round -> (size, mtime) of the file last checked
        owner = self.root / OWNER_FILE
        recorded = owner.read_text().strip() if owner.exists() else None
        if recorded is not None and recorded != client_id:
            raise UserError(f"state directory {self.root} belongs to client {recorded!r}, "
                            f"not {client_id!r}: give this client its own --state-dir")
        (self.root / "rounds").mkdir(parents=True, exist_ok=True)
        if recorded is None:
            owner.write_text(client_id + "\n")

    def _dir(self, round_number: int) -> Path:
        return self.root / "rounds" / f"{round_number:06d}"

    def save(self, round_number: int, state: dict[str, torch.Tensor], meta: dict) -> None:
        """Write through a temporary directory and rename, so a crash never leaves half a round."""
        final = self._dir(round_number)
        tmp = final.with_name(f".tmp-{final.name}-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / STATE_FILE))
        meta = {**meta, "sha256": file_sha256(tmp / STATE_FILE)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        self._verified.pop(round_number, None)

    def rounds(self) -> list[int]:
        return sorted(int(p.name) for p in (self.root / "rounds").iterdir() if p.name.isdigit())

    def has(self, round_number: int) -> bool:
        return self._dir(round_number).is_dir()  # renamed into place whole: present means taken part

    def load(self, round_number: int) -> dict[str, torch.Tensor]:
        """The round's state, checked against the checksum written with it; DamagedState otherwise."""
        path = self._dir(round_number) / STATE_FILE
        try:
            self._verify(round_number, path)
            return load_file(str(path))
        except (OSError, ValueError, SafetensorError) as exc:
            raise DamagedState(f"this client's round {round_number} state in {path.parent} is unreadable: "
                               f"{exc}") from exc

    def _verify(self, round_number: int, path: Path) -> None:
        """Hash the file only when it changed since it was last found intact (probes repeat rounds)."""
        stat = path.stat()
        seen = (stat.st_size, stat.st_mtime_ns)
        if self._verified.get(round_number) == seen:
            return
        expected = self.meta(round_number).get("sha256")  # absent only in states saved before checksums
        if expected is not None and file_sha256(path) != expected:
            raise DamagedState(f"this client's round {round_number} state {path} does not match its checksum")
        self._verified[round_number] = seen

    def meta(self, round_number: int) -> dict:
        return json.loads((self._dir(round_number) / "meta.json").read_text())
