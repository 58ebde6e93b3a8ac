"""Speech recognition: faster-whisper over CTranslate2, from local model directories only."""
