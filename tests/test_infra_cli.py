"""`protoken infra`: bundles, claims, shards, health, scale — and clear one-line errors for bad input."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from protoken.credentials import CredentialRegistry, read_credential
from protoken.errors import UserError
from protoken.infra.bundles import client_bundle, issue_bundles, server_bundle
from protoken.infra.join import claim_bundle
from protoken.infra.shaping import Shaping
from protoken.infra.pki import certificate_names
from protoken.infra.shards import shard_lines, write_shard


def protoken(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "protoken.cli", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def _write_domains(root: Path, sizes: dict[str, int]) -> Path:
    for domain, size in sizes.items():
        (root / domain).mkdir(parents=True)
        (root / domain / "train.jsonl").write_text(
            "".join(json.dumps({"prompt": f"{domain} {i}?", "response": f"{domain} {i}."}) + "\n" for i in range(size)))
    return root


# -- certs ------------------------------------------------------------------------------------

def test_certs_issues_a_ca_a_server_bundle_and_one_bundle_per_client(tmp_path):
    out = tmp_path / "pki"
    result = protoken("infra", "certs", "--out", str(out), "--clients", "hospital-a,bank-b",
                      "--server-names", "coordinator.example.org,10.0.0.1")
    assert result.returncode == 0, result.stderr
    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    server = server_bundle(out)
    assert sorted(certificate_names(server.cert.read_bytes())) == ["10.0.0.1", "coordinator.example.org"]
    registry = CredentialRegistry.load(server.registry)
    for client_id in ("hospital-a", "bank-b"):
        bundle = client_bundle(out, client_id)
        cert = x509.load_pem_x509_certificate(bundle.cert.read_bytes())
        cert.verify_directly_issued_by(ca)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == client_id
        assert bundle.ca.read_bytes() == (out / "ca.pem").read_bytes()
        assert read_credential(bundle.credential)[0] == client_id
        assert registry.identify(read_credential(bundle.credential)[1]) == client_id
        for private in (bundle.key, bundle.credential):
            assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "ca.key").stat().st_mode) == 0o600


def test_certs_is_additive_and_keeps_what_exists(tmp_path):
    issue_bundles(tmp_path, ["a"])
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    report = issue_bundles(tmp_path, ["a", "b"])
    assert report.created == ["b"] and report.kept == ["server", "a"]
    assert all(path.read_bytes() == data for path, data in before.items() if path.name != "credentials.toml")
    registry = CredentialRegistry.load(server_bundle(tmp_path).registry)
    assert registry.identify(read_credential(client_bundle(tmp_path, "a").credential)[1]) == "a"


@pytest.mark.parametrize("args, message", [
    (["--clients", "../escape"], "starting with a letter or digit"),
    (["--clients", "a,a"], "distinct"),
    (["--clients", " , "], "names nothing"),
    (["--count", "2", "--server-names", "bad name"], "neither an IP address nor a host name"),
    (["--count", "abc"], "'abc' is not a whole number"),
])
def test_certs_refuses_bad_input_in_one_line(tmp_path, args, message):
    result = protoken("infra", "certs", "--out", str(tmp_path / "pki"), *args)
    if "--count" in args and "abc" in args:  # refused by the argument parser, with its usage line
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    else:
        assert_one_line_error(result, message)
    assert not (tmp_path / "pki").exists()


def test_certs_refuses_to_reissue_the_server_for_other_names(tmp_path):
    issue_bundles(tmp_path, ["a"], ["localhost"])
    result = protoken("infra", "certs", "--out", str(tmp_path), "--count", "1", "--server-names", "10.1.2.3")
    assert_one_line_error(result, "was issued for localhost")


# -- claims and shards ------------------------------------------------------------------------

def test_replicas_claim_distinct_bundles_atomically(tmp_path):
    issue_bundles(tmp_path, [f"client-{i:03d}" for i in range(8)])
    claims, barrier = {}, threading.Barrier(8)

    def replica(name: str) -> None:
        barrier.wait()
        claims[name] = claim_bundle(tmp_path / "clients", name)

    threads = [threading.Thread(target=replica, args=(f"replica-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(c.client_id for c in claims.values()) == [f"client-{i:03d}" for i in range(8)]
    assert sorted(c.index for c in claims.values()) == list(range(8))
    with pytest.raises(UserError, match="all 8 client bundles .* are claimed"):
        claim_bundle(tmp_path / "clients", "replica-8")
    again = claim_bundle(tmp_path / "clients", "replica-3")  # a restart keeps its identity
    assert again.client_id == claims["replica-3"].client_id
    claims["replica-5"].release()
    assert claim_bundle(tmp_path / "clients", "replica-8").client_id == claims["replica-5"].client_id


def test_shards_are_disjoint_and_cover_every_record(tmp_path):
    root = _write_domains(tmp_path, {"finance": 7, "math": 9})
    shards = [shard_lines(root, index, 5) for index in range(5)]
    everything = [line for shard in shards for line in shard]
    assert len(everything) == len(set(everything)) == 16
    assert all("finance" in line for line in shards[0] + shards[2] + shards[4])
    assert write_shard(root, 1, 5, tmp_path / "out") == len(shards[1])
    assert (tmp_path / "out" / "train.jsonl").read_text().splitlines(keepends=True) == shards[1]


def test_a_single_file_root_is_one_domain_and_too_small_a_domain_is_refused(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"prompt": "p", "response": "r"}\n' * 2)
    assert len(shard_lines(tmp_path, 1, 2)) == 1
    with pytest.raises(UserError, match="too few for 3 clients"):
        shard_lines(tmp_path, 2, 3)
    with pytest.raises(UserError, match="protoken data build"):
        shard_lines(tmp_path / "missing", 0, 1)


# -- health, scale, netns input ---------------------------------------------------------------

def test_health_checks_a_port_on_loopback():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        assert protoken("infra", "health", "--address", address).returncode == 0
        assert protoken("infra", "health", env={"PROTOKEN_HEALTH_ADDRESS": address}).returncode == 0
    assert_one_line_error(protoken("infra", "health", "--address", address), f"cannot reach {address}")
    assert_one_line_error(protoken("infra", "health", "--address", "no-port"), "must be HOST:PORT")


def test_scale_without_a_docker_daemon_says_so(tmp_path):
    issue_bundles(tmp_path / "pki", ["client-000", "client-001"])
    result = protoken("infra", "scale", "--clients", "2", "--server", "10.0.0.1:50051", "--bundles",
                      str(tmp_path / "pki"), "--workdir", str(tmp_path / "work"),
                      env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert_one_line_error(result, "no Docker daemon reachable")
    assert not (tmp_path / "work").exists()


def test_scale_checks_its_bundles_before_docker(tmp_path):
    issue_bundles(tmp_path / "pki", ["client-000"])
    result = protoken("infra", "scale", "--clients", "3", "--server", "10.0.0.1:50051", "--bundles",
                      str(tmp_path / "pki"))
    assert_one_line_error(result, "holds 1 client bundles, fewer than --clients 3")


@pytest.mark.parametrize("args, message", [
    (["--rate", "fast"], "--rate 'fast' must look like"),
    (["--loss", "100"], "--loss in [0, 100)"),
    (["--delay", "-1"], "--delay must be at least 0"),
])
def test_netns_up_refuses_bad_shaping_in_one_line(tmp_path, args, message):
    result = protoken("infra", "netns", "up", "--clients", "2", "--data", str(tmp_path), "--workdir",
                      str(tmp_path / "lab"), *args)
    assert_one_line_error(result, message)


def test_netns_down_without_a_lab_says_so(tmp_path):
    assert_one_line_error(protoken("infra", "netns", "down", "--workdir", str(tmp_path)), "does not exist")


def test_shaping_puts_rate_under_netem_or_alone():
    both = Shaping(delay_ms=20, loss_pct=0.5, rate="10mbit").qdiscs("eth0")
    assert both[0][:7] == ["qdisc", "add", "dev", "eth0", "root", "handle", "1:"]
    assert both[0][7:] == ["netem", "delay", "20ms", "loss", "0.5%"]
    assert both[1][4:6] == ["parent", "1:1"] and "tbf" in both[1]
    alone = Shaping(rate="1gbit").qdiscs("eth0")
    assert len(alone) == 1 and alone[0][4] == "root" and alone[0][alone[0].index("burst") + 1] == "1250000"
    assert not Shaping() and Shaping().describe() == "unshaped"


def test_netns_up_refuses_fewer_clients_than_the_server_waits_for(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"prompt": "p", "response": "r"}\n')
    result = protoken("infra", "netns", "up", "--clients", "1", "--data", str(tmp_path), "--workdir",
                      str(tmp_path / "lab"))
    assert_one_line_error(result, "federation.min_clients=2")
    assert not (tmp_path / "lab").exists()


def test_a_claimed_bundle_becomes_a_mutual_tls_client_command(tmp_path):
    from protoken.cli import build_parser
    from protoken.infra.join import client_argv

    issue_bundles(tmp_path, ["client-000"])
    claim = claim_bundle(tmp_path / "clients", "replica")
    args = build_parser().parse_args(client_argv(claim, "10.0.0.2:50051", tmp_path / "data", tmp_path / "state",
                                                 threads=1, release_model=True))
    assert (args.command, args.server, args.threads, args.release_model) == ("client", "10.0.0.2:50051", 1, True)
    assert Path(args.credential) == claim.bundle.credential and Path(args.tls_key) == claim.bundle.key
