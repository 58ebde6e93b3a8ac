"""The last stage: immutable releases (`releases/`), the formats ML teams pull (`exports/`), and governance (`governance/`)."""
