"""gRPC channel and server options shared by both sides."""

from __future__ import annotations

MAX_MESSAGE_BYTES = 64 << 20


def grpc_options() -> list[tuple[str, int]]:
    """Message limits above the largest probe, and keepalives that notice a dead peer."""
    return [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_time_ms", 20_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.so_reuseport", 0)]  # a second server on a port in use must fail, not share it
