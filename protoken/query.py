"""Asking a server for provenance: `protoken attribute`, the demo and the evaluation harness."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from protoken.attribution import ClientShare, Coverage, Provenance, TokenProvenance
from protoken.config import check_server_address
from protoken.errors import UserError
from protoken.tls import channel_credentials
from protoken.v1 import federation_pb2 as pb
from protoken.v1 import federation_pb2_grpc as rpc
from protoken.wire.channel import grpc_options

MODES = {"calibrated": pb.SCORING_MODE_CALIBRATED, "paper": pb.SCORING_MODE_PAPER,
         "no-gradient": pb.SCORING_MODE_NO_GRADIENT}


@dataclass
class Attribution:
    provenance: Provenance
    probe_bytes: int
    answer_bytes: int


def _shares(items) -> list[ClientShare]:
    return [ClientShare(client=s.client_id, probability=s.probability, score=s.score) for s in items]


def provenance_from_events(events) -> Attribution:
    tokens: list[TokenProvenance] = []
    for event in events:
        if event.WhichOneof("kind") == "token":
            t = event.token
            tokens.append(TokenProvenance(position=t.position, token_id=t.token_id, text=t.text,
                                          shares=_shares(t.shares), responsible=t.responsible_client or None))
        else:
            s = event.summary
            answered = sorted(x.client_id for x in s.shares)
            asked = sorted(answered + list(s.missing_clients) + list(s.uncalibrated_clients))
            mode = next(name for name, wire in MODES.items() if wire == s.mode)
            provenance = Provenance(
                prompt=s.prompt, response=s.response, mode=mode, objective=s.objective, modules=list(s.modules),
                tokens=tokens,
                shares=_shares(s.shares), traced=s.traced_client or None,
                coverage=Coverage(asked=asked, answered=answered, missing=list(s.missing_clients),
                                  uncalibrated=list(s.uncalibrated_clients)),
                timings=dict(s.timings), round=s.round)
            return Attribution(provenance, s.probe_bytes, s.answer_bytes)
    raise UserError("the server ended the attribution stream without a summary")


class AttributionClient:
    def __init__(self, server: str, *, tls_ca: str | None = None, tls_cert: str | None = None,
                 tls_key: str | None = None) -> None:
        check_server_address(server)
        credentials = channel_credentials(tls_ca, tls_cert, tls_key)
        self.server = server
        self._channel = (grpc.secure_channel(server, credentials, options=grpc_options()) if credentials
                         else grpc.insecure_channel(server, options=grpc_options()))
        self._stub = rpc.AttributionStub(self._channel)

    def attribute(self, prompt: str, *, round_number: int = 0, max_new_tokens: int = 0,
                  mode: str | None = None, timeout: float = 600) -> Attribution:
        if mode is not None and mode not in MODES:
            raise UserError(f"--mode must be one of {', '.join(MODES)}")
        request = pb.AttributeRequest(prompt=prompt, round=round_number, max_new_tokens=max_new_tokens,
                                      mode=MODES[mode] if mode else pb.SCORING_MODE_UNSPECIFIED)
        try:
            return provenance_from_events(self._stub.Attribute(request, timeout=timeout))
        except grpc.RpcError as exc:
            raise UserError(_describe(exc, self.server)) from exc

    def rounds(self) -> list[pb.RoundInfo]:
        try:
            return list(self._stub.ListRounds(pb.RoundsRequest(), timeout=30).rounds)
        except grpc.RpcError as exc:
            raise UserError(_describe(exc, self.server)) from exc

    def close(self) -> None:
        self._channel.close()


def _describe(exc: grpc.RpcError, server: str) -> str:
    if exc.code() == grpc.StatusCode.UNAVAILABLE:
        return f"cannot reach the server at {server}: {exc.details()}"
    return exc.details() or exc.code().name


def format_text(result: Attribution) -> str:
    p = result.provenance
    lines = [f"round {p.round} · mode {p.mode} · objective {p.objective} · {p.coverage}", f"response: {p.response}",
             f"traced client: {p.traced or 'no client stands out'}", "",
             "response-level distribution: " + ", ".join(f"{s.client} {s.probability:.2f}" for s in p.shares), "",
             f"{'#':>3}  {'token':<18} responsible"]
    for token in p.tokens:
        lines.append(f"{token.position:>3}  {token.text!r:<18} {token.responsible or '-'}")
    timings = ", ".join(f"{k} {v:.2f}" for k, v in sorted(p.timings.items()))
    lines += ["", f"timings (s): {timings}",
              f"wire: {result.probe_bytes} bytes per probe, {result.answer_bytes} bytes per answer"]
    return "\n".join(lines)
