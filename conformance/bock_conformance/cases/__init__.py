"""The bundled conformance cases (collected by bock-conformance, one file per spec section)."""
