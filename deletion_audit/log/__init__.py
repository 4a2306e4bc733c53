"""The transparency log: RFC 6962 tree, C2SP checkpoints and tiles, over the database."""
