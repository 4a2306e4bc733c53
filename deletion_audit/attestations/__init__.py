"""Signed statements: ingest (``POST /api/v1/attestations``), storage and refusals."""
