"""The probe broker: answers are bound to their client; a lost client is reported at once."""

import threading
import time

from protoken.server.probes import ProbeBroker
from protoken.server.sessions import SessionRegistry
from protoken.v1 import federation_pb2 as pb


def _connected(sessions: SessionRegistry, *names: str) -> dict:
    made = {}
    for name in names:
        made[name] = sessions.register(name, 4)
        sessions.mark_subscribed(made[name])
    return made


def test_a_client_whose_connection_ends_is_reported_without_waiting_for_the_deadline():
    sessions = SessionRegistry()
    broker = ProbeBroker(sessions)
    live = _connected(sessions, "alice", "bob")
    outcome = {}
    started = time.monotonic()
    asking = threading.Thread(target=lambda: outcome.update(result=broker.ask(
        {"alice": pb.ProbeRequest(round=1), "bob": pb.ProbeRequest(round=1)}, timeout_s=60)))
    asking.start()
    probe = live["alice"].outbox.get(timeout=10).probe
    assert broker.deliver("alice", pb.ProbeAnswer(probe_id=probe.probe_id)) is None
    live["bob"].outbox.get(timeout=10)
    sessions.disconnect(live["bob"])
    asking.join(timeout=10)
    assert not asking.is_alive() and time.monotonic() - started < 10
    assert list(outcome["result"].answers) == ["alice"] and outcome["result"].missing == ["bob"]


def test_an_answer_from_another_client_is_refused():
    sessions = SessionRegistry()
    broker = ProbeBroker(sessions)
    live = _connected(sessions, "alice", "bob")
    outcome = {}
    asking = threading.Thread(target=lambda: outcome.update(
        result=broker.ask({"alice": pb.ProbeRequest(round=1)}, timeout_s=1)))
    asking.start()
    probe = live["alice"].outbox.get(timeout=10).probe
    refusal = broker.deliver("bob", pb.ProbeAnswer(probe_id=probe.probe_id))
    assert refusal is not None and refusal.code == pb.ERROR_CODE_INVALID_ARGUMENT
    asking.join(timeout=10)
    assert outcome["result"].missing == ["alice"]
