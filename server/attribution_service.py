"""The Attribution gRPC service: rounds, and per-token provenance streamed to the user."""

from __future__ import annotations

import grpc

from protoken.attribution import CALIBRATED, NO_GRADIENT, PAPER, Provenance
from protoken.errors import UserError
from protoken.v1 import federation_pb2 as pb
from protoken.v1 import federation_pb2_grpc as rpc

from .attributor import AttributionError, Attributor

MODE_FROM_WIRE = {pb.SCORING_MODE_UNSPECIFIED: None, pb.SCORING_MODE_CALIBRATED: CALIBRATED,
                  pb.SCORING_MODE_PAPER: PAPER, pb.SCORING_MODE_NO_GRADIENT: NO_GRADIENT}
MODE_TO_WIRE = {mode: wire for wire, mode in MODE_FROM_WIRE.items() if mode}
_STATUS = {"invalid": grpc.StatusCode.INVALID_ARGUMENT, "not_found": grpc.StatusCode.NOT_FOUND,
           "unavailable": grpc.StatusCode.FAILED_PRECONDITION}  # UNAVAILABLE is left to the transport
MAX_PROMPT_CHARS = 8192


def _shares(shares) -> list[pb.ClientShare]:
    return [pb.ClientShare(client_id=s.client, probability=s.probability, score=s.score) for s in shares]


def provenance_events(provenance: Provenance, probe_bytes: float, answer_bytes: float):
    """The stream a user receives: one event per token, then the response-level summary."""
    for token in provenance.tokens:
        yield pb.AttributionEvent(token=pb.TokenProvenance(
            position=token.position, token_id=token.token_id, text=token.text, shares=_shares(token.shares),
            responsible_client=token.responsible or ""))
    coverage = provenance.coverage
    yield pb.AttributionEvent(summary=pb.ResponseProvenance(
        round=provenance.round or 0, response=provenance.response, shares=_shares(provenance.shares),
        traced_client=provenance.traced or "", clients_answered=len(coverage.answered),
        clients_asked=len(coverage.asked), missing_clients=coverage.missing,
        uncalibrated_clients=coverage.uncalibrated, timings=provenance.timings,
        mode=MODE_TO_WIRE[provenance.mode], objective=provenance.objective, modules=provenance.modules, prompt=provenance.prompt,
        probe_bytes=int(probe_bytes), answer_bytes=int(answer_bytes)))


class AttributionServicer(rpc.AttributionServicer):
    def __init__(self, attributor: Attributor, log) -> None:
        self.attributor = attributor
        self.log = log

    def ListRounds(self, request: pb.RoundsRequest, context) -> pb.RoundsReply:
        return pb.RoundsReply(rounds=[pb.RoundInfo(round=r.round, participants=r.participants, metrics=r.metrics)
                                      for r in self.attributor.store.rounds() if r.round > 0])

    def Attribute(self, request: pb.AttributeRequest, context):
        if request.mode not in MODE_FROM_WIRE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown scoring mode {request.mode}")
        if len(request.prompt) > MAX_PROMPT_CHARS:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the prompt exceeds {MAX_PROMPT_CHARS} characters")
        try:
            provenance, stats = self.attributor.attribute(request.prompt, request.round, request.max_new_tokens or None,
                                                   MODE_FROM_WIRE[request.mode])
        except AttributionError as exc:
            self.log(f"attribution refused: {exc}")
            context.abort(_STATUS[exc.kind], str(exc))
        except UserError as exc:  # the state directory cannot serve this round (damaged or missing)
            self.log(f"attribution failed: {exc}")
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        for client, reason in stats.refused.items():
            self.log(f"attribution: {client} did not answer: {reason}")
        self.log(f"attribution of round {provenance.round}: traced {provenance.traced or 'no client'} "
                 f"({provenance.coverage})")
        yield from provenance_events(provenance, stats.bytes_per_probe, stats.bytes_per_answer)
