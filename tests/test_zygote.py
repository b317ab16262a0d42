"""Clients forked from one zygote: real, separate processes that share the imported libraries."""

import os
import signal
import time

import psutil
import pytest

from federation_harness import write_dataset

from protoken.credentials import issue_credential
from protoken.launcher import process_env
from protoken.server.state import StateStore
from protoken.zygote import ForkedProcess, Zygote


@pytest.fixture(scope="module")
def zygote():
    made = Zygote(process_env(1))
    yield made
    made.close()


def test_a_forked_command_runs_with_its_own_log_and_exit_code(zygote, tmp_path):
    log = tmp_path / "client.log"
    proc = zygote.start(["client", "--server", "127.0.0.1:9", "--data", str(tmp_path / "missing"),
                         "--credential", str(tmp_path / "none.credential")], log)
    assert proc.wait(timeout=60) == 2
    assert "cannot read credential file" in log.read_text()


def test_a_killed_process_reports_its_signal(zygote, tmp_path):
    data = write_dataset(tmp_path / "data", ["medical"])
    issue_credential(tmp_path / "credentials.toml", "medical", tmp_path / "medical.credential")
    log = tmp_path / "client.log"
    log.touch()
    proc = zygote.start(["client", "--server", "127.0.0.1:9", "--data", str(data / "medical"),
                         "--credential", str(tmp_path / "medical.credential"), "--state-dir", str(tmp_path / "state")],
                        log)
    deadline = time.time() + 60
    while "connecting" not in log.read_text() and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, log.read_text()  # retrying with back-off: the server is not there
    proc.kill()
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.kill()  # already gone: nothing to signal, no error


def test_forked_clients_train_a_federation_and_share_the_libraries(federation):
    fed = federation(fork_clients=True)
    fed.start_all()
    assert fed.wait_server() == 0, fed.log("server")
    rounds = [r for r in StateStore(fed.root / "server-state").rounds() if r.round > 0]
    assert [r.round for r in rounds] == [1, 2] and all(r.participants == sorted(fed.clients) for r in rounds)
    clients = {name: fed.procs[name] for name in fed.clients}
    assert all(isinstance(proc, ForkedProcess) for proc in clients.values())
    parents = {psutil.Process(proc.pid).ppid() for proc in clients.values()}
    assert len(parents) == 1 and parents != {os.getpid()}, "every client is a child of the one zygote"
    libraries = psutil.Process(parents.pop()).memory_info().rss  # what each client would otherwise own
    for name, proc in clients.items():
        assert "round 2: update accepted" in fed.log(name)
        memory = psutil.Process(proc.pid).memory_full_info()
        # after two rounds of training, most of what the client maps is still the zygote's
        assert memory.uss < memory.rss / 2 and memory.uss < libraries / 2, (name, memory, libraries)
