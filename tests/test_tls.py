"""Mutual TLS and identity against a real coordinator (tiny model) on loopback.

The clients here are raw gRPC stubs, so each test can present exactly the certificate and
credential it wants to try.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest

from federation_harness import tiny_config, write_dataset
from protoken.config import FederationConfig, dump_config
from protoken.credentials import METADATA_KEY, read_credential
from protoken.infra.bundles import BundleFiles, client_bundle, counted_ids, issue_bundles, server_bundle
from protoken.server.app import Coordinator
from protoken.server.state import StateStore
from protoken.v1 import federation_pb2 as pb
from protoken.v1 import federation_pb2_grpc as rpc

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pki")
    issue_bundles(root / "ours", ["alice", "bob"], ["localhost", "127.0.0.1"])
    issue_bundles(root / "theirs", ["alice"], ["localhost"])  # same names, another CA
    return {"ours": root / "ours", "theirs": root / "theirs", "root": root}


def _mutual_tls_config(bundles: Path, address: str, state_dir: Path) -> FederationConfig:
    """Two clients, one round of the tiny model, mutual TLS with the server bundle in `bundles`."""
    server = server_bundle(bundles)
    return tiny_config(["a", "b"], federation__address=address, federation__rounds=1,
                       federation__state_dir=str(state_dir), federation__credentials=str(server.registry),
                       training__local_steps=1, tls__enabled=True, tls__ca=str(server.ca),
                       tls__cert=str(server.cert), tls__key=str(server.key))


@pytest.fixture(scope="module")
def coordinator(pki):
    config = _mutual_tls_config(pki["ours"], "127.0.0.1:0", pki["root"] / "server-state")
    coordinator = Coordinator(config, resume=False, log=lambda message: None)
    runner = threading.Thread(target=coordinator.run, daemon=True)
    runner.start()
    yield coordinator
    coordinator.request_stop()
    runner.join(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stub(port: int, trust: Path, cert: BundleFiles | None) -> rpc.FederationStub:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=trust.read_bytes(),
        private_key=cert.key.read_bytes() if cert else None,
        certificate_chain=cert.cert.read_bytes() if cert else None)
    return rpc.FederationStub(grpc.secure_channel(f"localhost:{port}", credentials))


def _metadata(bundle: BundleFiles) -> tuple[tuple[str, str], ...]:
    return ((METADATA_KEY, read_credential(bundle.credential)[1]),)


def _register(stub, metadata) -> pb.RegisterReply:
    return stub.Register(pb.RegisterRequest(client_version="test"), metadata=metadata, timeout=15)


def _refusal(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    return refused.value.code()


def test_a_certificate_from_another_ca_is_refused(pki, coordinator):
    alice, impostor = client_bundle(pki["ours"], "alice"), client_bundle(pki["theirs"], "alice")
    stub = _stub(coordinator.port, alice.ca, impostor)
    assert _refusal(lambda: _register(stub, _metadata(alice))) == grpc.StatusCode.UNAVAILABLE


def test_a_client_without_certificate_is_refused(pki, coordinator):
    alice = client_bundle(pki["ours"], "alice")
    stub = _stub(coordinator.port, alice.ca, None)
    assert _refusal(lambda: _register(stub, _metadata(alice))) == grpc.StatusCode.UNAVAILABLE


def test_a_client_must_trust_the_servers_ca(pki, coordinator):
    alice, foreign_ca = client_bundle(pki["ours"], "alice"), pki["theirs"] / "ca.pem"
    stub = _stub(coordinator.port, foreign_ca, alice)
    assert _refusal(lambda: _register(stub, _metadata(alice))) == grpc.StatusCode.UNAVAILABLE


def test_a_client_without_credential_is_refused(pki, coordinator):
    alice = client_bundle(pki["ours"], "alice")
    stub = _stub(coordinator.port, alice.ca, alice)
    assert _refusal(lambda: _register(stub, ())) == grpc.StatusCode.UNAUTHENTICATED


def test_a_certificate_and_a_credential_must_name_the_same_client(pki, coordinator):
    alice, bob = client_bundle(pki["ours"], "alice"), client_bundle(pki["ours"], "bob")
    stub = _stub(coordinator.port, alice.ca, alice)
    assert _refusal(lambda: _register(stub, _metadata(bob))) == grpc.StatusCode.PERMISSION_DENIED


class _Party:
    """A registered, subscribed client whose pushed messages land in a queue."""

    def __init__(self, port: int, bundle: BundleFiles) -> None:
        self.stub = _stub(port, bundle.ca, bundle)
        self.metadata = _metadata(bundle)
        reply = _register(self.stub, self.metadata)
        assert reply.client_id == bundle.directory.name
        self.inbox: queue.Queue = queue.Queue()
        self.stream = self.stub.Subscribe(pb.SubscribeRequest(session_id=reply.session_id), metadata=self.metadata)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for message in self.stream:
                self.inbox.put(message)
        except grpc.RpcError:
            pass

    def next(self, kind: str):
        while True:
            message = self.inbox.get(timeout=60)
            if message.WhichOneof("kind") == kind:
                return getattr(message, kind)


def test_no_client_can_upload_or_answer_in_another_clients_name(pki, coordinator):
    alice = _Party(coordinator.port, client_bundle(pki["ours"], "alice"))
    bob = _Party(coordinator.port, client_bundle(pki["ours"], "bob"))
    alice_task, bob_task = alice.next("train"), bob.next("train")  # round 1 samples both

    header = pb.UpdateHeader(round=bob_task.round, task_id=bob_task.task_id, num_examples=4)
    reply = alice.stub.UploadUpdate(iter([pb.UploadMessage(header=header)]), metadata=alice.metadata, timeout=15)
    assert not reply.accepted and reply.error.code == pb.ERROR_CODE_POLICY_REFUSED
    assert "alice has no task" in reply.error.message
    assert alice_task.task_id != bob_task.task_id

    outcome: dict = {}
    asking = threading.Thread(target=lambda: outcome.update(
        result=coordinator.probes.ask({"bob": pb.ProbeRequest(round=1)}, timeout_s=30)))
    asking.start()
    probe = bob.next("probe")
    forged = alice.stub.AnswerProbe(pb.ProbeAnswer(probe_id=probe.probe_id), metadata=alice.metadata, timeout=15)
    assert not forged.accepted and forged.error.code == pb.ERROR_CODE_INVALID_ARGUMENT
    answered = bob.stub.AnswerProbe(pb.ProbeAnswer(probe_id=probe.probe_id), metadata=bob.metadata, timeout=15)
    assert answered.accepted
    asking.join(timeout=30)
    assert list(outcome["result"].answers) == ["bob"]


def test_clients_joining_from_a_pool_train_over_mutual_tls(tmp_path):
    """Real processes: `protoken server` with mutual TLS and two `protoken infra join` replicas."""
    bundles = tmp_path / "pki"
    issue_bundles(bundles, counted_ids(2), ["localhost"])
    address = f"localhost:{_free_port()}"
    config = tmp_path / "federation.toml"
    config.write_text(dump_config(_mutual_tls_config(bundles, address, tmp_path / "server-state")))
    data = write_dataset(tmp_path / "data", names=("medical", "finance"), per_client=6)
    commands = {"server": ["server", "--config", str(config)]}
    for replica in ("replica-a", "replica-b"):
        commands[replica] = ["infra", "join", "--bundles", str(bundles / "clients"), "--server", address, "--data",
                             str(data), "--state", str(tmp_path / "clients"), "--claimant", replica, "--threads", "1"]
    processes = {name: subprocess.Popen([sys.executable, "-m", "protoken.cli", *argv],
                                        env={**os.environ, "OMP_NUM_THREADS": "1"},
                                        stdout=open(tmp_path / f"{name}.log", "w"), stderr=subprocess.STDOUT)
                 for name, argv in commands.items()}
    try:
        assert processes["server"].wait(timeout=150) == 0, (tmp_path / "server.log").read_text()
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=30)
    rounds = [r for r in StateStore(tmp_path / "server-state").rounds() if r.round > 0]
    assert [sorted(r.participants) for r in rounds] == [["client-000", "client-001"]]
    for client_id in ("client-000", "client-001"):
        assert (tmp_path / "clients" / client_id / "data" / "train.jsonl").exists()
        assert not (bundles / "clients" / client_id / ".claimed-by").exists()  # released on exit
