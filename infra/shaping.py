"""How a client's link treats its packets: delay, loss and rate, as `tc` queueing disciplines.

netem adds delay and loss; tbf limits the rate. With both, tbf sits under netem (the usual
netem recipe), so packets are delayed and dropped first, then paced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from protoken.errors import UserError

_RATE = re.compile(r"(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)")
_RATE_SCALE = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9}


@dataclass(frozen=True)
class Shaping:
    """What a client's link does to its packets, in each direction."""

    delay_ms: float = 0.0
    loss_pct: float = 0.0
    rate: str = ""  # tc notation: 500kbit, 10mbit, 1gbit

    def __post_init__(self) -> None:
        if self.delay_ms < 0 or not 0 <= self.loss_pct < 100:
            raise UserError("--delay must be at least 0 and --loss in [0, 100)")
        if self.rate and not _RATE.fullmatch(self.rate):
            raise UserError(f"--rate {self.rate!r} must look like 500kbit, 10mbit or 1gbit")

    def __bool__(self) -> bool:
        return bool(self.delay_ms or self.loss_pct or self.rate)

    def describe(self) -> str:
        parts = ([f"delay {self.delay_ms:g} ms"] if self.delay_ms else []) + \
                ([f"loss {self.loss_pct:g}%"] if self.loss_pct else []) + ([f"rate {self.rate}"] if self.rate else [])
        return ", ".join(parts) or "unshaped"

    def qdiscs(self, device: str) -> list[list[str]]:
        """`tc` argument lists that shape `device`: netem at the root, tbf under it (or alone)."""
        commands: list[list[str]] = []
        parent = ["root"]
        if self.delay_ms or self.loss_pct:
            netem = (["delay", f"{self.delay_ms:g}ms"] if self.delay_ms else []) + \
                    (["loss", f"{self.loss_pct:g}%"] if self.loss_pct else [])
            commands.append(["qdisc", "add", "dev", device, "root", "handle", "1:", "netem", *netem])
            parent = ["parent", "1:1"]
        if self.rate:
            number, unit = _RATE.fullmatch(self.rate).groups()
            bits_per_s = float(number) * _RATE_SCALE[unit]
            burst = max(int(bits_per_s / 8 / 100), 4 * 1514)  # 10 ms worth, at least a few full frames
            commands.append(["qdisc", "add", "dev", device, *parent, "handle", "10:", "tbf", "rate", self.rate,
                             "burst", str(burst), "latency", "200ms"])
        return commands
