"""The Federation gRPC service: registration, the push stream, uploads, heartbeats, probe answers."""

from __future__ import annotations

import threading

import grpc

from protoken.credentials import METADATA_KEY, CredentialRegistry
from protoken.v1 import federation_pb2 as pb
from protoken.v1 import federation_pb2_grpc as rpc
from protoken.wire.payload import PayloadAssembler, PayloadError, check_state_matches, decode_state

from .rounds import RoundRunner
from .sessions import SessionRegistry

HEARTBEAT_INTERVAL_MS = 2000


def _error(code: int, message: str, field: str = "") -> pb.Error:
    return pb.Error(code=code, message=message, field=field)


class FederationServicer(rpc.FederationServicer):
    def __init__(self, *, credentials: CredentialRegistry, sessions: SessionRegistry, runner: RoundRunner,
                 model_spec: str, base_fingerprint: str, probes, log, max_concurrent_uploads: int = 2) -> None:
        self.credentials = credentials
        self.sessions = sessions
        self.runner = runner
        self.model_spec = model_spec
        self.base_fingerprint = base_fingerprint
        self.probes = probes
        self.log = log
        self._upload_slots = threading.BoundedSemaphore(max_concurrent_uploads)
        self.progress: dict[str, pb.HeartbeatRequest] = {}

    def _caller(self, context: grpc.ServicerContext) -> str:
        """The client id bound to the call's credential; aborts the call when there is none.

        Under mutual TLS the client certificate's common name must be that same client id, so a
        leaked credential is of no use without its party's private key.
        """
        secret = dict(context.invocation_metadata()).get(METADATA_KEY)
        client_id = self.credentials.identify(secret)
        if client_id is None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          "unknown or missing client credential" if secret else "no client credential sent")
        certified = [name.decode() for name in context.auth_context().get("x509_common_name", [])]
        if certified and certified[0] != client_id:
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          f"the TLS certificate names {certified[0]!r} but the credential is {client_id!r}'s")
        return client_id

    def Register(self, request: pb.RegisterRequest, context) -> pb.RegisterReply:
        client_id = self._caller(context)
        if request.base_fingerprint and request.base_fingerprint != self.base_fingerprint:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"base model mismatch: the federation runs {self.model_spec!r} "
                          f"(fingerprint {self.base_fingerprint}), the client has {request.base_fingerprint}")
        session = self.sessions.register(client_id, request.capabilities.num_examples)
        return pb.RegisterReply(client_id=client_id, session_id=session.session_id, model=self.model_spec,
                                base_fingerprint=self.base_fingerprint,
                                heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS)

    def Subscribe(self, request: pb.SubscribeRequest, context):
        client_id = self._caller(context)
        session = self.sessions.lookup(client_id, request.session_id)
        if session is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown session: register again")
        context.add_callback(lambda: self._disconnected(session))
        self.sessions.mark_subscribed(session)
        self.log(f"client {client_id} connected ({session.num_examples} examples; "
                 f"{len(self.sessions.connected())} clients connected)")
        yield from session.messages()

    def _disconnected(self, session) -> None:
        if self.sessions.current(session.client_id) is session:  # not when a newer session replaced it
            self.log(f"client {session.client_id} disconnected")
        self.sessions.disconnect(session)

    def Heartbeat(self, request: pb.HeartbeatRequest, context) -> pb.HeartbeatReply:
        client_id = self._caller(context)
        session = self.sessions.lookup(client_id, request.session_id)
        if session is None:
            return pb.HeartbeatReply(known_session=False)
        previous = self.progress.get(client_id)
        self.progress[client_id] = request
        if request.phase == "training" and (previous is None or previous.step != request.step):
            self.log(f"round {request.round} | {client_id} | step {request.step}/{request.total_steps} "
                     f"| loss {request.loss:.3f}")
        return pb.HeartbeatReply(known_session=True)

    def UploadUpdate(self, request_iterator, context) -> pb.UploadReply:
        client_id = self._caller(context)
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("kind") != "header":
            return pb.UploadReply(error=_error(pb.ERROR_CODE_INVALID_ARGUMENT,
                                               "an upload must start with an UpdateHeader", "header"))
        header = first.header
        round_ = self.runner.current
        if round_ is None or round_.number != header.round or round_.closed:
            return pb.UploadReply(error=_error(pb.ERROR_CODE_UNKNOWN_ROUND,
                                               f"round {header.round} is not open for updates", "round"))
        if round_.tasks.get(client_id) != header.task_id:
            return pb.UploadReply(error=_error(pb.ERROR_CODE_POLICY_REFUSED,
                                               f"client {client_id} has no task {header.task_id!r} in round "
                                               f"{header.round}", "task_id"))
        if client_id in round_.answered:
            return pb.UploadReply(error=_error(pb.ERROR_CODE_POLICY_REFUSED,
                                               f"client {client_id} already sent its update for round {header.round}"))
        if header.declined:
            with round_.cond:
                round_.gone.add(client_id)
                round_.cond.notify_all()
            self.log(f"round {header.round}: {client_id} could not train: {header.declined[:300]}")
            return pb.UploadReply(accepted=True)
        if header.num_examples == 0:
            return pb.UploadReply(error=_error(pb.ERROR_CODE_INVALID_ARGUMENT,
                                               "num_examples must be positive", "num_examples"))
        with self._upload_slots:
            try:
                assembler = PayloadAssembler()
                received = first.ByteSize()
                for message in request_iterator:
                    received += message.ByteSize()
                    if message.WhichOneof("kind") != "chunk":
                        raise PayloadError("only payload chunks may follow the header")
                    assembler.add(message.chunk)
                state = decode_state(assembler.payload())
                del assembler
                check_state_matches(state, round_.reference)
            except PayloadError as exc:
                self.log(f"rejected update from {client_id}: {exc}")
                return pb.UploadReply(error=_error(exc.code, str(exc), "chunk"))
            with round_.cond:
                if round_.closed or client_id in round_.answered:
                    return pb.UploadReply(error=_error(pb.ERROR_CODE_UNKNOWN_ROUND,
                                                       f"round {header.round} closed before the update arrived"))
                round_.accumulator.add(state, int(header.num_examples))
                del state
                round_.answered.add(client_id)
                for key, value in header.metrics.items():
                    round_.metrics[f"{key}/{client_id}"] = float(value)
                round_.metrics[f"num_examples/{client_id}"] = float(header.num_examples)
                round_.metrics[f"bytes_up/{client_id}"] = float(received)
                round_.cond.notify_all()
        self.log(f"round {header.round}: update from {client_id} aggregated "
                 f"({round_.accumulator.count}/{len(round_.tasks)})")
        return pb.UploadReply(accepted=True)

    def AnswerProbe(self, request: pb.ProbeAnswer, context) -> pb.ProbeAnswerReply:
        client_id = self._caller(context)
        error = self.probes.deliver(client_id, request)
        if error is not None:
            return pb.ProbeAnswerReply(error=error)
        return pb.ProbeAnswerReply(accepted=True)
