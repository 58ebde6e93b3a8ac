"""Pieces of the editor page that draw or play audio: windowed reading, the waveform, keyboard shortcuts."""
