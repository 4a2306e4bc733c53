"""People: organisations, users, personal access tokens, signing keys, authentication."""
