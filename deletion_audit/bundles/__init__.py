"""Evidence bundles: a case exported as one zip (court or public tier) that anyone can verify
offline with nothing but the log's key or a checkpoint kept earlier."""
