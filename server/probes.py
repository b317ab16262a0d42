"""Attribution probes in flight: push one probe per client, collect answers until a deadline.

A probe id is bound to the client it was sent to, so an answer is only accepted from that
client; clients that do not answer in time are reported, never silently dropped. A client
whose connection ends is reported at once instead of being waited for until the deadline.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

from protoken.v1 import federation_pb2 as pb

from .sessions import SessionRegistry


@dataclass
class _Pending:
    client_id: str
    done: threading.Event = field(default_factory=threading.Event)
    answer: pb.ProbeAnswer | None = None


@dataclass
class ProbeOutcome:
    answers: dict[str, pb.ProbeAnswer]       # client id -> scores
    refused: dict[str, pb.Error]             # client id -> the client's refusal
    missing: list[str]                        # not connected, or no answer by the deadline
    bytes_sent: dict[str, int]
    bytes_received: dict[str, int]


class ProbeBroker:
    def __init__(self, sessions: SessionRegistry) -> None:
        self._sessions = sessions
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        sessions.add_disconnect_listener(self._client_gone)

    def _client_gone(self, client_id: str) -> None:
        with self._lock:
            gone = [p for p in self._pending.values() if p.client_id == client_id and p.answer is None]
        for pending in gone:
            pending.done.set()

    def ask(self, requests: dict[str, pb.ProbeRequest], timeout_s: float) -> ProbeOutcome:
        """Send each client its probe and wait for all answers or the deadline."""
        deadline = time.time() + timeout_s
        outcome = ProbeOutcome({}, {}, [], {}, {})
        waiting: dict[str, _Pending] = {}
        for client_id, request in requests.items():
            session = self._sessions.current(client_id)
            if session is None:
                outcome.missing.append(client_id)
                continue
            request.probe_id = uuid.uuid4().hex
            request.deadline_unix_ms = int(deadline * 1000)
            pending = _Pending(client_id)
            with self._lock:
                self._pending[request.probe_id] = pending
            waiting[request.probe_id] = pending
            outcome.bytes_sent[client_id] = request.ByteSize()
            session.push(pb.ServerMessage(probe=request))
        for probe_id, pending in waiting.items():
            pending.done.wait(max(0.0, deadline - time.time()))
            with self._lock:
                self._pending.pop(probe_id, None)
            answer = pending.answer
            if answer is None:
                outcome.missing.append(pending.client_id)
            elif answer.HasField("error"):
                outcome.refused[pending.client_id] = answer.error
            else:
                outcome.answers[pending.client_id] = answer
                outcome.bytes_received[pending.client_id] = answer.ByteSize()
        outcome.missing.sort()
        return outcome

    def deliver(self, client_id: str, answer: pb.ProbeAnswer) -> pb.Error | None:
        with self._lock:
            pending = self._pending.get(answer.probe_id)
            if pending is None or pending.client_id != client_id:
                return pb.Error(code=pb.ERROR_CODE_INVALID_ARGUMENT,
                                message=f"no probe {answer.probe_id!r} is waiting for an answer from {client_id}",
                                field="probe_id")
            if pending.answer is not None:
                return pb.Error(code=pb.ERROR_CODE_POLICY_REFUSED, message="probe already answered",
                                field="probe_id")
            pending.answer = answer
        pending.done.set()
        return None
