"""The Attribution gRPC service: round listing and (with the attribution library) provenance."""

from __future__ import annotations

import grpc

from protoken.v1 import federation_pb2 as pb
from protoken.v1 import federation_pb2_grpc as rpc


class AttributionServicer(rpc.AttributionServicer):
    def __init__(self, coordinator) -> None:
        self.coordinator = coordinator

    def ListRounds(self, request: pb.RoundsRequest, context) -> pb.RoundsReply:
        records = self.coordinator.store.rounds()
        return pb.RoundsReply(rounds=[pb.RoundInfo(round=r.round, participants=r.participants, metrics=r.metrics)
                                      for r in records if r.round > 0])

    def Attribute(self, request: pb.AttributeRequest, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "attribution is not available in this build yet")
