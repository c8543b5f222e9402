"""The synthetic lunar world: cratered terrain, rendered orbital maps and descent sequences with exact truth."""
