"""Generated code of the ``protoken.v1`` wire contract (see ``federation.proto``)."""
