"""The verdict: what accepted statements say about items, the truth table, versions."""
