"""A federation across real network boundaries: server and clients each in their own namespace.

Root only. Everything runs on a bridge and in namespaces the test itself creates; the test
ends by checking that `down` left nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from federation_harness import tiny_config, write_dataset
from protoken.config import dump_config
from protoken.errors import UserError
from protoken.infra import netns
from protoken.infra.bundles import client_bundle
from protoken.infra.netns import STATE_FILE, Lab, create_lab, destroy_lab, leftovers
from protoken.infra.shaping import Shaping
from protoken.server.state import StateStore

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("ip") is None or shutil.which("tc") is None, reason="needs iproute2 (ip, tc)"),
]

CLIENTS = 4


def _protoken(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "protoken.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _config(path: Path) -> Path:
    config = tiny_config([f"client-{i}" for i in range(CLIENTS)], federation__round_timeout_s=150.0,
                         federation__serve_after_training=True,  # stays up for the attribution query
                         training__local_steps=1, training__max_seq_len=64, attribution__max_new_tokens=6)
    path.write_text(dump_config(config))
    return path


def _system_state(prefix: str) -> tuple[list[str], list[str]]:
    """Namespaces and links on this host whose names carry the lab's prefix."""
    namespaces = [n for n in netns.run("ip", "netns", "list").split() if n.startswith(prefix)]
    links = [line.split(":")[1].strip().split("@")[0] for line in netns.run("ip", "-o", "link").splitlines()]
    return namespaces, [link for link in links if link.startswith(prefix)]


def _wait_for(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.5)
    raise AssertionError(f"{path} did not show {text!r} within {timeout:g} s:\n"
                         + (path.read_text()[-3000:] if path.exists() else "(no log)"))


def _up(tmp_path: Path, data: Path, config: Path, shaping: list[str]) -> subprocess.CompletedProcess:
    return _protoken("infra", "netns", "up", "--clients", str(CLIENTS), "--data", str(data), "--config",
                     str(config), "--workdir", str(tmp_path / "lab"), *shaping)


@pytest.mark.timeout(300)
def test_a_federation_runs_across_namespaces_and_down_leaves_nothing(tmp_path):
    data = write_dataset(tmp_path / "data", names=("medical", "finance"), per_client=8)
    config = _config(tmp_path / "federation.toml")
    started = _up(tmp_path, data, config, ["--delay", "15", "--loss", "1", "--rate", "50mbit"])
    if started.returncode != 0 and "no netem" in started.stderr:
        # This kernel cannot add delay or loss; `up` must have rolled back completely. Shape the
        # links by rate (tbf) instead, so the run still crosses shaped namespace boundaries.
        assert started.stderr.count("\n") == 1 and "Traceback" not in started.stderr
        assert not (tmp_path / "lab" / STATE_FILE).exists()
        print("kernel without sch_netem: links shaped by rate only")
        started = _up(tmp_path, data, config, ["--rate", "50mbit"])
    assert started.returncode == 0, started.stderr
    lab = Lab.load(tmp_path / "lab" / STATE_FILE)
    try:
        assert len(lab.nodes) == CLIENTS + 1 and len({n.namespace for n in lab.nodes}) == CLIENTS + 1
        namespaces, links = _system_state(lab.prefix)
        assert sorted(namespaces) == sorted(n.namespace for n in lab.nodes)
        assert lab.bridge in links
        client = lab.node("client-0")
        shaped = netns.run("ip", "netns", "exec", client.namespace, "tc", "qdisc", "show", "dev", "eth0")
        assert "tbf" in shaped and ("netem" in shaped) == ("delay" in lab.info["shaping"])
        address = netns.run("ip", "-n", client.namespace, "-4", "-o", "addr", "show", "dev", "eth0")
        assert client.address in address

        run_dir = Path(lab.info["run_dir"])
        _wait_for(run_dir / "logs" / "server.log", "training finished", timeout=200)
        rounds = [r for r in StateStore(run_dir / "server-state").rounds() if r.round > 0]
        assert [r.round for r in rounds] == [1, 2]
        expected = [f"client-{i:03d}" for i in range(CLIENTS)]
        assert all(sorted(r.participants) == expected for r in rounds)

        # -- attribution query across the namespaces -----------------------------------------
        # From the host, over the bridge, with mutual TLS: the server probes every client in its
        # own namespace through its shaped link. Any certificate of the federation's CA may ask.
        asker = client_bundle(run_dir / "bundles", "client-000")
        query = _protoken("attribute", "--server", lab.info["server"], "--prompt", "What is 3 plus 3?",
                          "--format", "json", "--tls-ca", str(asker.ca), "--tls-cert", str(asker.cert),
                          "--tls-key", str(asker.key))
        assert query.returncode == 0, query.stderr
        provenance = json.loads(query.stdout)
        assert sorted(provenance["coverage"]["answered"]) == expected and provenance["round"] == 2
        assert provenance["tokens"] and {s["client"] for s in provenance["shares"]} == set(expected)
    finally:
        stopped = _protoken("infra", "netns", "down", "--workdir", str(tmp_path / "lab"))
    assert stopped.returncode == 0, stopped.stderr
    assert _system_state(lab.prefix) == ([], [])
    assert not any(netns.alive(p) for p in lab.processes)
    assert not (tmp_path / "lab" / STATE_FILE).exists()


def test_a_failed_up_removes_what_it_had_created(tmp_path, monkeypatch):
    made = []

    def failing_shape(node, shaping):
        made.append(node.namespace)
        if len(made) == 2:
            raise UserError("shaping failed")

    monkeypatch.setattr(netns, "_shape", failing_shape)
    with pytest.raises(UserError, match="shaping failed"):
        create_lab(tmp_path, 3, Shaping(rate="10mbit"))
    prefix = made[0].split("-")[0]
    assert _system_state(prefix) == ([], [])
    assert not (tmp_path / STATE_FILE).exists()


@pytest.mark.parametrize("text", ["{}", "[]", '{"prefix": "x"}'])
def test_a_state_file_not_written_by_up_is_refused(tmp_path, text):
    (tmp_path / STATE_FILE).write_text(text)
    with pytest.raises(UserError, match="is not one `netns up` wrote"):
        Lab.load(tmp_path / STATE_FILE)


def test_down_is_exact_and_a_second_up_is_refused(tmp_path):
    lab = create_lab(tmp_path, 1, Shaping())
    try:
        with pytest.raises(UserError, match="records a running lab"):
            create_lab(tmp_path, 1, Shaping())
        bystander = f"{lab.prefix}-other"  # same prefix, not recorded: down must not touch it
        netns.run("ip", "netns", "add", bystander)
        try:
            destroy_lab(lab)
            assert leftovers(lab) == []
            assert _system_state(lab.prefix)[0] == [bystander]
        finally:
            netns.run("ip", "netns", "del", bystander)
    finally:
        if (tmp_path / STATE_FILE).exists():
            destroy_lab(lab)
