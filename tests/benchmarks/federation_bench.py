"""Federation protocol cost, measured side by side in one run with the tiny model.

Prints, for 2 and 8 client processes on loopback: protocol overhead per round (round wall time
minus the slowest client's local training time, over round wall time), protocol bytes sent per
client per round (global weights down, update up), and the server's peak RSS.

    python tests/benchmarks/federation_bench.py [--rounds 2] [--local-steps 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from federation_harness import Federation  # noqa: E402

from protoken.server.state import StateStore  # noqa: E402

NAMES = ("medical", "finance", "math")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def measure(clients: int, rounds: int, local_steps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        names = tuple(f"{NAMES[i % 3]}" if i < 3 else f"{NAMES[i % 3]}{i}" for i in range(clients))
        fed = Federation(Path(tmp), clients=names, federation__rounds=rounds, federation__serve_after_training=True,
                         training__local_steps=local_steps, evaluation__heldout_dir="")
        try:
            fed.start_all()
            fed.wait_for_log("server", "training finished", timeout=900)
            rss = peak_rss_mib(fed.procs["server"].pid)
        finally:
            fed.close()
        records = [r for r in StateStore(fed.state_dir).rounds() if r.round > 0]
    overheads, overhead_seconds, per_client_bytes = [], [], []
    for record in records:
        m = record.metrics
        slowest = max(v for k, v in m.items() if k.startswith("train_seconds/"))
        overheads.append((m["round_seconds"] - slowest) / m["round_seconds"])
        overhead_seconds.append(m["round_seconds"] - slowest)
        ups = [v for k, v in m.items() if k.startswith("bytes_up/")]
        downs = [v for k, v in m.items() if k.startswith("bytes_down/")]
        per_client_bytes.append((sum(ups) + sum(downs)) / len(ups))
    return {"clients": clients, "round_seconds": sum(r.metrics["round_seconds"] for r in records) / len(records),
            "overhead": sum(overheads) / len(overheads),
            "overhead_seconds": sum(overhead_seconds) / len(overhead_seconds),
            "bytes_per_client_round": sum(per_client_bytes) / len(per_client_bytes), "server_peak_rss_mib": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--local-steps", type=int, default=8)
    args = parser.parse_args()
    rows = [measure(n, args.rounds, args.local_steps) for n in (2, 8)]
    print(f"{'clients':>7} {'round s':>8} {'overhead':>9} {'overhead s':>11} {'bytes/client/round':>19} "
          f"{'server peak RSS MiB':>20}")
    for row in rows:
        print(f"{row['clients']:>7} {row['round_seconds']:>8.2f} {row['overhead']:>9.1%} {row['overhead_seconds']:>11.2f} "
              f"{row['bytes_per_client_round']:>19,.0f} {row['server_peak_rss_mib']:>20.0f}")
    print(f"server peak RSS, 8 clients / 2 clients: {rows[1]['server_peak_rss_mib'] / rows[0]['server_peak_rss_mib']:.2f}")


if __name__ == "__main__":
    main()
