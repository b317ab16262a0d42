"""The coordinator: sessions, rounds, aggregation, state and the attribution service."""
