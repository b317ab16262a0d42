"""The party daemon: dial out, register, take pushed tasks and probes, reconnect with back-off."""

from __future__ import annotations

import ctypes
import gc
import random
import threading
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import grpc
import torch

from protoken import __version__
from protoken.config import check_server_address
from protoken.console import stamped_logger
from protoken.credentials import METADATA_KEY, read_credential
from protoken.data import load_records
from protoken.errors import UserError
from protoken.examples import encode_records
from protoken.models import fingerprint, load_model
from protoken.tls import channel_credentials
from protoken.trainable import FULL, LORA, TrainableSpec, build_trainable, load_trainable_state, trainable_state
from protoken.v1 import federation_pb2 as pb
from protoken.v1 import federation_pb2_grpc as rpc
from protoken.wire.channel import grpc_options
from protoken.wire.payload import PayloadError, assemble_state, check_state_matches, iter_chunks, state_chunks

from .probes import ProbeAnswerer, compile_policy
from .store import LocalModelStore
from .trainer import train_locally

_PERMANENT = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
              grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT}


@dataclass
class ClientOptions:
    server: str
    data: Path
    credential: Path
    state_dir: Path | None = None  # default: runs/client-<client id>
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    max_backoff_s: float = 30.0
    allowed_modules: tuple[str, ...] = ()  # empty: the default probe policy
    release_model: bool = False  # load the model per task or probe and drop it after (light when idle)


def _return_freed_memory() -> None:
    """Ask glibc to hand freed heap pages back to the system (otherwise an idle process keeps them)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _spec_from(hyper: pb.Hyperparameters) -> TrainableSpec:
    mode = FULL if hyper.mode == pb.TRAINING_MODE_FULL else LORA
    return TrainableSpec(mode=mode, lora_rank=hyper.lora.rank, lora_alpha=hyper.lora.alpha,
                         lora_dropout=hyper.lora.dropout, target_modules=tuple(hyper.lora.target_modules))


class FederatedClient:
    def __init__(self, options: ClientOptions, log=None) -> None:
        self.options = options
        check_server_address(options.server)
        self.client_id, self._secret = read_credential(options.credential)
        self.log = log or stamped_logger(self.client_id)
        self.records = load_records(Path(options.data))
        allowed_modules = compile_policy(options.allowed_modules)
        self._channel_credentials = channel_credentials(options.tls_ca, options.tls_cert, options.tls_key)
        self._metadata = ((METADATA_KEY, self._secret),)
        self.loaded = None
        self.model = None
        self.spec: TrainableSpec | None = None
        self.store = LocalModelStore(options.state_dir or Path("runs") / f"client-{self.client_id}", self.client_id)
        self.answerer = ProbeAnswerer(self.store, self._model_for_round, allowed_modules)
        self._registered = False
        self._base_spec = ""
        self._base_fingerprint = ""
        self._progress = pb.HeartbeatRequest(phase="idle")
        self._stop = threading.Event()
        self._live_channel: grpc.Channel | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def run(self) -> int:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                self._session()
                backoff = 1.0
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                if code in _PERMANENT:
                    raise UserError(f"the server refused this client: {exc.details()}") from exc
                if code == grpc.StatusCode.CANCELLED and self._stop.is_set():
                    break
                detail = exc.details() if hasattr(exc, "details") else str(exc)
                wait = backoff * (0.5 + random.random())
                what = "lost the connection to" if self._registered else "cannot reach"
                self.log(f"{what} {self.options.server} ({code.name if code else 'error'}: {detail}); "
                         f"retrying in {wait:.1f} s")
                self._stop.wait(wait)
                backoff = min(backoff * 2, self.options.max_backoff_s)
        return 0

    def stop(self) -> None:
        self._stop.set()
        channel = self._live_channel
        if channel is not None:
            channel.close()  # cancels a call blocked on the stream or on an absent server

    def _channel(self) -> grpc.Channel:
        if self._channel_credentials is None:
            return grpc.insecure_channel(self.options.server, options=grpc_options())
        return grpc.secure_channel(self.options.server, self._channel_credentials, options=grpc_options())

    def _session(self) -> None:
        with self._channel() as channel:
            self._live_channel = channel
            if self._stop.is_set():
                return
            stub = rpc.FederationStub(channel)
            self._registered = False
            self.log(f"connecting to {self.options.server}")
            caps = pb.Capabilities(training_modes=[pb.TRAINING_MODE_LORA, pb.TRAINING_MODE_FULL],
                                   attribution_probes=True, differential_privacy=True,
                                   num_examples=len(self.records))
            reply = stub.Register(pb.RegisterRequest(client_version=__version__, capabilities=caps),
                                  metadata=self._metadata, timeout=30, wait_for_ready=True)
            self._registered = True
            self._check_base(reply)
            self.log(f"registered with {self.options.server} as {reply.client_id}")
            stream = stub.Subscribe(pb.SubscribeRequest(session_id=reply.session_id), metadata=self._metadata)
            beats = threading.Thread(target=self._heartbeats, args=(stub, reply, stream), daemon=True)
            beats.start()
            try:
                for message in stream:
                    kind = message.WhichOneof("kind")
                    if kind == "train":
                        self._train(stub, message.train, iter_chunks(stream, "weights_chunk"))
                    elif kind == "probe":
                        self._answer_probe(stub, message.probe)
                    elif kind == "error" and message.error.code == pb.ERROR_CODE_SESSION_REPLACED:
                        raise UserError(f"{message.error.message}: another process uses this credential "
                                        "(each client needs its own)")
                    elif kind == "error":
                        self.log(f"server error: {message.error.message}")
            finally:
                stream.cancel()

    def _heartbeats(self, stub, reply: pb.RegisterReply, stream) -> None:
        interval = max(reply.heartbeat_interval_ms, 200) / 1000
        while not self._stop.wait(interval) and stream.is_active():
            beat = pb.HeartbeatRequest()
            beat.CopyFrom(self._progress)
            beat.session_id = reply.session_id
            try:
                if not stub.Heartbeat(beat, metadata=self._metadata, timeout=10).known_session:
                    stream.cancel()  # the server forgot us (restart): register again
                    return
            except grpc.RpcError:
                return  # the stream's own failure drives the reconnect

    def _check_base(self, reply: pb.RegisterReply) -> None:
        """Remember the federation's base; load it now unless models are loaded on demand."""
        self._base_spec, self._base_fingerprint = reply.model, reply.base_fingerprint
        if self.loaded is not None and self.loaded.spec != reply.model:
            self._release()
        if not self.options.release_model:
            self._base()

    def _base(self):
        if self.loaded is None:
            self.log(f"loading base model {self._base_spec}")
            loaded = load_model(self._base_spec)
            own = fingerprint(loaded.model.state_dict())
            if self._base_fingerprint and self._base_fingerprint != own:
                raise UserError(f"base model mismatch: the server's {self._base_spec!r} has fingerprint "
                                f"{self._base_fingerprint}, this client's has {own}")
            self.loaded = loaded
        return self.loaded

    def _trainable(self, spec: TrainableSpec) -> torch.nn.Module:
        if self.model is None or spec != self.spec:
            if self.model is not None:  # LoRA wrapped the old base in place: start from a fresh one
                self._release()
            self.model = build_trainable(self._base().model, spec)
            self.spec = spec
        return self.model

    def _model_for_round(self, round_number: int) -> torch.nn.Module:
        return self._trainable(TrainableSpec(**{k: tuple(v) if isinstance(v, list) else v
                                                for k, v in self.store.meta(round_number)["spec"].items()}))

    def _release(self) -> None:
        """Drop the models so an idle client holds little memory."""
        self.loaded = self.model = self.spec = None
        gc.collect()
        _return_freed_memory()

    # -- work ------------------------------------------------------------------------------------

    def _train(self, stub, task: pb.TrainTask, chunks) -> None:
        hyper = task.hyperparameters
        spec = _spec_from(hyper)
        model = self._trainable(spec)
        limited = islice(chunks, task.weights_chunks)
        try:
            global_state = assemble_state(limited)
            check_state_matches(global_state, trainable_state(model))
        except PayloadError as exc:
            self.log(f"round {task.round}: rejected the global weights: {exc}")
            return
        load_trainable_state(model, global_state)
        del global_state
        tokenizer = self.loaded.tokenizer
        examples = encode_records(tokenizer, self.records, hyper.max_seq_len)
        self.log(f"round {task.round}: training {hyper.local_steps} steps on {len(examples)} examples")

        def progress(step: int, total: int, loss: float) -> None:
            self._progress = pb.HeartbeatRequest(round=task.round, step=step, total_steps=total,
                                                 phase="training", loss=loss)

        seed = hyper.seed * 7919 + sum(self.client_id.encode())
        try:
            metrics = train_locally(model, examples, hyper, tokenizer.pad_token_id, seed, progress)
        except FloatingPointError as exc:
            self.log(f"round {task.round}: training diverged ({exc}); no update sent")
            self._progress = pb.HeartbeatRequest(round=task.round, phase="idle")
            declined = pb.UpdateHeader(round=task.round, task_id=task.task_id, declined=f"training diverged: {exc}")
            stub.UploadUpdate(iter([pb.UploadMessage(header=declined)]), metadata=self._metadata, timeout=60)
            return
        state = trainable_state(model)
        self.store.save(task.round, state, {"round": task.round, "task_id": task.task_id, "spec": asdict(spec),
                                            "num_examples": len(examples), "metrics": metrics})
        self._progress = pb.HeartbeatRequest(round=task.round, phase="uploading")
        header = pb.UpdateHeader(round=task.round, task_id=task.task_id, num_examples=len(examples),
                                 metrics=metrics)
        messages = [pb.UploadMessage(header=header)] + [pb.UploadMessage(chunk=c) for c in state_chunks(state)]
        reply = stub.UploadUpdate(iter(messages), metadata=self._metadata, timeout=600)
        if reply.accepted:
            self.log(f"round {task.round}: update accepted (train loss {metrics['train_loss']:.3f})")
        else:
            self.log(f"round {task.round}: update refused: {reply.error.message}")
        self._progress = pb.HeartbeatRequest(round=task.round, phase="idle")
        if self.options.release_model:
            self._release()

    def _answer_probe(self, stub, probe: pb.ProbeRequest) -> None:
        self._progress = pb.HeartbeatRequest(round=probe.round, phase="probing")
        answer = self.answerer.answer(probe)
        if self.options.release_model:
            self._release()
        self._progress = pb.HeartbeatRequest(round=probe.round, phase="idle")
        stub.AnswerProbe(answer, metadata=self._metadata, timeout=60)
