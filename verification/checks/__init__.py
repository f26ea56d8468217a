"""One module per checked result; see ``verification`` for the protocol. Modules starting with ``_`` are
shared helpers, not checks."""
