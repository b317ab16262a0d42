"""The attribution method as a library: layer selection, hooks, relevance, scoring (no networking)."""
