"""Federation scaling over real network boundaries: 4, 8, 16 and 32 client processes, tiny model.

Each size runs a fresh lab (`protoken infra netns up`): the server and every client in its own
network namespace on a bridge, mutual TLS, one round. Prints per size:

- round time: from the server sampling the clients to the round's completion (client start-up,
  which is model loading, is not counted);
- bytes on the wire per client, both directions of its link as counted at the host end of its
  veth (TLS, registration, heartbeats, global weights down, update up), and the split;
- the server's peak RSS, and a client's mean private memory once the round is over (what each
  further client costs: shared library pages are counted once, not per process).

Root only. Needs about 0.4 GiB of memory per client; sizes that do not fit are skipped.

    python tests/benchmarks/scaling_bench.py [--sizes 4,8,16,32] [--rate 1gbit] [--delay MS] [--release-model]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from federation_bench import peak_rss_mib  # noqa: E402
from federation_harness import write_dataset  # noqa: E402

from protoken.config import FederationConfig, dump_config  # noqa: E402
from protoken.infra.netns import Lab, destroy_lab  # noqa: E402
from protoken.infra.netns_federation import NetnsFederation, up  # noqa: E402
from protoken.infra.shaping import Shaping  # noqa: E402

CLIENT_MIB = 400  # a client's private memory after a round, with some margin


def _meminfo_mib(key: str) -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/meminfo")


def _private_mib(pid: int) -> float:
    """Memory only this process holds (its pages not shared with any other)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
    return sum(int(fields[key].split()[0]) for key in ("Private_Clean", "Private_Dirty")) / 1024


def _config(path: Path, clients: int) -> Path:
    config = FederationConfig()
    fed = config.federation
    fed.model, fed.rounds, fed.serve_after_training = "tiny-llama", 1, True
    fed.min_clients = fed.clients_per_round = clients
    fed.wait_timeout_s, fed.round_timeout_s = 1800.0, 600.0
    config.training.local_steps, config.training.batch_size, config.training.max_seq_len = 1, 2, 64
    path.write_text(dump_config(config))
    return path


def _follow(log: Path, marks: dict[str, str], timeout_s: float) -> dict[str, float]:
    """Monotonic time at which each text in `marks` first appears in the growing `log`."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    while len(seen) < len(marks):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{log} did not show {sorted(set(marks) - set(seen))} within {timeout_s:g} s")
        text = log.read_text() if log.exists() else ""
        now = time.monotonic()
        for name, mark in marks.items():
            if name not in seen and mark in text:
                seen[name] = now
        time.sleep(0.05)
    return seen


def _link_bytes(link: str) -> tuple[int, int]:
    """(bytes to the client, bytes from the client) at the host end of its veth."""
    stats = Path(f"/sys/class/net/{link}/statistics")
    return int((stats / "tx_bytes").read_text()), int((stats / "rx_bytes").read_text())


def measure(clients: int, shaping: Shaping, release_model: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="scaling-") as tmp:
        root = Path(tmp)
        data = write_dataset(root / "data", names=("medical", "finance", "math"), per_client=max(4, clients))
        plan = NetnsFederation(clients=clients, data=data, config=_config(root / "federation.toml", clients),
                               workdir=root / "lab", shaping=shaping, release_model=release_model)
        lab: Lab = up(plan)
        try:
            log = Path(lab.info["run_dir"]) / "logs" / "server.log"
            times = _follow(log, {"start": "round 1: sampled", "end": "round 1 complete"}, timeout_s=1800)
            links = [_link_bytes(node.host_link) for node in lab.nodes[1:]]
            server, client_processes = lab.processes[0], lab.processes[1:]
            return {"clients": clients, "round_s": times["end"] - times["start"],
                    "down_kib": sum(d for d, _ in links) / clients / 1024,
                    "up_kib": sum(u for _, u in links) / clients / 1024,
                    "server_peak_mib": peak_rss_mib(server.pid),
                    "client_private_mib": sum(_private_mib(p.pid) for p in client_processes) / clients}
        finally:
            destroy_lab(lab)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="4,8,16,32", help="client counts, comma-separated")
    parser.add_argument("--rate", default="", help="bandwidth of each client link, e.g. 100mbit")
    parser.add_argument("--delay", type=float, default=0.0, help="one-way delay per client link, ms (needs netem)")
    parser.add_argument("--release-model", action="store_true",
                        help="idle clients drop their model (pays off for large models, not the tiny one)")
    args = parser.parse_args()
    shaping = Shaping(delay_ms=args.delay, rate=args.rate)
    print(f"tiny-llama, 1 round, 1 local step, mutual TLS, client links: {shaping.describe()}, "
          f"idle clients {'release' if args.release_model else 'keep'} the model")
    print(f"{'clients':>7} | {'round s':>8} | {'wire KiB/client':>15} | {'down/up KiB':>13} | "
          f"{'server peak MiB':>15} | {'client private MiB':>18}")
    for clients in (int(size) for size in args.sizes.split(",")):
        available = _meminfo_mib("MemAvailable")
        if clients * CLIENT_MIB > available:
            print(f"{clients:>7} | skipped: needs ~{clients * CLIENT_MIB / 1024:.0f} GiB, "
                  f"{available / 1024:.0f} GiB available")
            continue
        r = measure(clients, shaping, release_model=args.release_model)
        print(f"{r['clients']:>7} | {r['round_s']:8.2f} | {r['down_kib'] + r['up_kib']:15.0f} | "
              f"{r['down_kib']:6.0f}/{r['up_kib']:<6.0f} | {r['server_peak_mib']:15.0f} | "
              f"{r['client_private_mib']:18.0f}", flush=True)


if __name__ == "__main__":
    main()
