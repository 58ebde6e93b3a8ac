"""Immutable, versioned releases: building the manifest, splits, the dataset card, verification, the CLI."""
