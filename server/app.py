"""The coordinator process: load the base, serve gRPC, run the rounds, persist each one."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc

from protoken.config import FederationConfig
from protoken.console import stamped_logger
from protoken.credentials import CredentialRegistry
from protoken.errors import UserError
from protoken.models import fingerprint, load_model
from protoken.tls import server_credentials
from protoken.trainable import build_trainable, load_trainable_state, trainable_state
from protoken.v1 import federation_pb2_grpc as rpc
from protoken.wire.channel import grpc_options

from .attribution_service import AttributionServicer
from .attributor import Attributor, attribution_layers
from .evaluation import HeldoutEvaluator
from .probes import ProbeBroker
from .reference import reference_examples
from .rounds import RoundFailed, RoundRunner
from .servicer import FederationServicer
from .sessions import SessionRegistry
from .state import StateStore

_log = stamped_logger("server")


class Coordinator:
    """Owns the global model, the state directory and the gRPC server."""

    def __init__(self, config: FederationConfig, *, resume: bool, log=_log) -> None:
        self.config = config
        self.log = log
        fed = config.federation
        self.credentials = CredentialRegistry.load(Path(fed.credentials))
        if len(self.credentials) == 0:
            raise UserError(f"credential registry {fed.credentials} lists no client")
        loaded = load_model(fed.model)
        self.tokenizer = loaded.tokenizer
        self.base_fingerprint = fingerprint(loaded.model.state_dict())
        self.spec = config.trainable_spec()
        self.model = build_trainable(loaded.model, self.spec, seed=fed.seed)
        # Everything that can be refused is checked before the state directory is touched.
        self.evaluator = None
        if config.evaluation.heldout_dir:
            self.evaluator = HeldoutEvaluator(Path(config.evaluation.heldout_dir), self.tokenizer,
                                              config.evaluation.examples_per_domain, config.training.max_seq_len)
        layers = attribution_layers(self.model, config.attribution.layers)
        calibration_reference = reference_examples(config.attribution)
        self.sessions = SessionRegistry()
        self.runner = RoundRunner(config, self.sessions, log)
        self.probes = ProbeBroker(self.sessions)
        self.stopping = threading.Event()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=512), options=grpc_options())
        self.port = self._listen(fed.address, server_credentials(config.tls))
        meta = {"model": fed.model, "base_fingerprint": self.base_fingerprint,
                "trainable": json.dumps(self.spec.__dict__, sort_keys=True, default=list)}
        if resume:
            self.store = StateStore.open_for_resume(Path(fed.state_dir), meta)
            latest = self.store.latest()
            self.global_state = self.store.load_weights(latest)
            self.next_round = latest.round + 1
            log(f"resuming after round {latest.round} from {fed.state_dir}")
        else:
            self.store = StateStore.create(Path(fed.state_dir), meta)
            self.global_state = trainable_state(self.model)
            self.store.save_round(0, self.global_state, [], {})
            self.next_round = 1
        load_trainable_state(self.model, self.global_state)
        self.model_lock = threading.Lock()
        rpc.add_FederationServicer_to_server(
            FederationServicer(credentials=self.credentials, sessions=self.sessions, runner=self.runner,
                               model_spec=fed.model, base_fingerprint=self.base_fingerprint,
                               probes=self.probes, log=log), self.server)
        attributor = Attributor(self.model, self.tokenizer, self.store, self.probes, config.attribution,
                                layers, calibration_reference, self.model_lock)
        rpc.add_AttributionServicer_to_server(AttributionServicer(attributor, log), self.server)

    def _listen(self, address: str, credentials: grpc.ServerCredentials | None) -> int:
        try:
            port = (self.server.add_secure_port(address, credentials) if credentials
                    else self.server.add_insecure_port(address))
        except RuntimeError as exc:
            raise UserError(f"cannot listen on {address}: {exc}") from exc
        if port == 0:
            raise UserError(f"cannot listen on {address}: address in use or invalid")
        return port

    def evaluate(self, state) -> dict[str, float]:
        if self.evaluator is None:
            return {}
        with self.model_lock:
            load_trainable_state(self.model, state)
            return self.evaluator.evaluate(self.model)

    def run(self) -> int:
        fed = self.config.federation
        self.server.start()
        self.log(f"listening on {fed.address} (port {self.port}); waiting for {fed.min_clients} clients")
        try:
            for number in range(self.next_round, fed.rounds + 1):
                started = time.time()
                new_state, round_ = self.runner.run(number, self.global_state)
                metrics = dict(round_.metrics)
                metrics.update(self.evaluate(new_state))
                metrics["round_seconds"] = time.time() - started
                self.store.save_round(number, new_state, sorted(round_.answered), metrics)
                self.global_state = new_state
                shown = ", ".join(f"{k}={v:.3f}" for k, v in sorted(metrics.items()) if "loss" in k)
                self.log(f"round {number} complete in {metrics['round_seconds']:.1f} s: {shown}")
            self.log(f"training finished: {fed.rounds} rounds in {fed.state_dir}")
            if fed.serve_after_training:
                self.log("serving attribution queries until stopped")
                self.stopping.wait()
            return 0
        except RoundFailed as exc:
            self.log(str(exc))
            return 2
        finally:
            self.sessions.close_all()
            self.server.stop(grace=2).wait()

    def request_stop(self) -> None:
        self.runner.stop.set()
        self.stopping.set()


def serve(config: FederationConfig, *, resume: bool) -> int:
    coordinator = Coordinator(config, resume=resume)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: coordinator.request_stop())
    code = coordinator.run()
    if coordinator.runner.stop.is_set() and code:
        print("server stopped before the last round; continue with --resume", file=sys.stderr)
    return code
