"""Who spoke when: pyannote.audio from a local pipeline directory, or the embedded default."""
