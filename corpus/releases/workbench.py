"""The pages the corpus stage adds to the workbench, handed to `review_ui.serve` by `turnscribe ui`."""

from __future__ import annotations

from pathlib import Path

from review_ui.serve import ExtraPage

RELEASES_PAGE = ExtraPage(Path(__file__).resolve().parent / "page.py", "Releases", "releases", "list_releases")
PAGES = (RELEASES_PAGE,)
