"""The runtime-spec as typed objects: validated once (schema + semantic checks), then structured."""
