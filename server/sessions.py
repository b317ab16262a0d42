"""Connected clients: one session per client, each with an outbox the server pushes into.

The Subscribe stream of a session blocks on its outbox, so work reaches a client the moment it
is queued (no polling). A client that registers again replaces its old session.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from dataclasses import dataclass, field

from protoken.v1 import federation_pb2 as pb

_CLOSE = object()


@dataclass
class Session:
    client_id: str
    session_id: str
    num_examples: int
    outbox: "queue.Queue[object]" = field(default_factory=queue.Queue)
    subscribed: bool = False
    closed: bool = False
    last_seen: float = field(default_factory=time.monotonic)

    def push(self, message: pb.ServerMessage) -> None:
        self.outbox.put(message)

    def messages(self):
        """Yield queued messages until the session closes."""
        while True:
            item = self.outbox.get()
            if item is _CLOSE:
                return
            yield item


class SessionRegistry:
    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._changed = threading.Condition()
        self._listeners: list = []

    def add_disconnect_listener(self, callback) -> None:
        """`callback(client_id)` runs whenever a client's live session ends."""
        self._listeners.append(callback)

    def register(self, client_id: str, num_examples: int) -> Session:
        session = Session(client_id=client_id, session_id=uuid.uuid4().hex, num_examples=num_examples)
        with self._changed:
            old = self._sessions.get(client_id)
            self._sessions[client_id] = session
        if old is not None:
            if old.subscribed and not old.closed:  # a live process holds it: tell it why it ends
                old.push(pb.ServerMessage(error=pb.Error(
                    code=pb.ERROR_CODE_SESSION_REPLACED,
                    message=f"client {client_id} connected again with the same credential; this session ends")))
            self._end(old)
        return session

    def lookup(self, client_id: str, session_id: str) -> Session | None:
        with self._changed:
            session = self._sessions.get(client_id)
        if session is None or session.session_id != session_id or session.closed:
            return None
        session.last_seen = time.monotonic()
        return session

    def current(self, client_id: str) -> Session | None:
        with self._changed:
            session = self._sessions.get(client_id)
        return session if session is not None and not session.closed else None

    def mark_subscribed(self, session: Session) -> None:
        with self._changed:
            session.subscribed = True
            self._changed.notify_all()

    def disconnect(self, session: Session) -> None:
        with self._changed:
            if self._sessions.get(session.client_id) is session:
                del self._sessions[session.client_id]
        self._end(session)

    def _end(self, session: Session) -> None:
        with self._changed:
            if session.closed:
                return
            session.closed = True
            session.outbox.put(_CLOSE)
            self._changed.notify_all()
        for callback in self._listeners:
            callback(session.client_id)

    def connected(self) -> list[str]:
        with self._changed:
            return sorted(cid for cid, s in self._sessions.items() if s.subscribed and not s.closed)

    def wait_for(self, count: int, timeout: float, stop: threading.Event) -> list[str]:
        """Block until `count` clients are connected (or timeout/stop); returns who is connected."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not stop.is_set():
                connected = sorted(cid for cid, s in self._sessions.items() if s.subscribed and not s.closed)
                remaining = deadline - time.monotonic()
                if len(connected) >= count or remaining <= 0:
                    return connected
                self._changed.wait(min(remaining, 1.0))
        return []

    def close_all(self) -> None:
        with self._changed:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            self._end(session)
