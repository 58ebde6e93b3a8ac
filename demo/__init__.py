"""The whole-pipeline demo on the committed synthetic dialogues (top floor: never imported by the product)."""
