"""Materialise a release in the formats speech teams already use (one module per format).

`pull.pull_release` walks the release's entry rows in order and hands each recording
(its approved turns, redacted if the release says so, and its audio placed in the
output as asked) to one exporter, which writes incrementally: no format holds the
whole corpus in memory. `registry.FORMATS` names the formats.
"""
