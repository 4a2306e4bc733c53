"""Formats shared by the server, the agent and the offline verifier.

Pure: no web framework, no database, no I/O beyond files the caller names.
"""
