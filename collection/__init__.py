"""Intake: recordings + speaker metadata + consent -> checked, stored, counted against the plan."""
