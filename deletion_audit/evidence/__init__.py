"""Evidence: manifests registered in a case, their items, tree and filter."""
