"""Errors that mean "the user asked for something we cannot do" (shown without a stack trace)."""


class UserError(Exception):
    """A mistake in input, configuration or environment, reported as one clear message."""
