"""Training scripts for the models the embedded diarizer ships (run by hand, never at run time)."""
