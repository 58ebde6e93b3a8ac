"""The workbench's releases, coverage and quality pages in a real browser (Debian chromium, playwright),
against `turnscribe ui` on a store with two releases: a consumer sees the releases and nothing else;
a manager's coverage heatmap says what `collect coverage --format json` says; the quality page
prints no "None". Screenshots at 1440x900 go to test-artifacts/ui/.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corpus.releases.build import build_release
from corpus.releases.verify import diff_releases
from review_ui.serve import REPO_ROOT
from tests.corpus.conftest import PASSWORD, PROTOCOL_ID, Corpus
from tests.review_ui.test_browser_e2e import CHROMIUM, Shots, running_ui, wait_idle
from turnscribe import app

ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"


@pytest.fixture
def server(corpus: Corpus, tmp_path: Path) -> Iterator[str]:
    """`turnscribe ui` (the console script, with the releases page it adds) on a free port."""
    build_release(corpus.store, corpus.manager, PROTOCOL_ID, "v1", seed=0)
    build_release(corpus.store, corpus.manager, PROTOCOL_ID, "v2", seed=3, reassign_splits=True)  # so the diff moves splits
    with running_ui(corpus.store, tmp_path) as url:
        yield url


def sign_in(page, url: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {username}").first.wait_for()
    wait_idle(page)


CELL = re.compile(r"(?P<percent>[\d.]+)% · (?P<amount>[\d.]+) (?P<unit>min|h) of (?P<target>[\d.]+) h · "
                  r"(?:gap (?P<gap>[\d.]+) h|target met)")


def read_cell(text: str) -> tuple[float, float, float, float]:
    """(percent, hours, target hours, gap hours) as a heatmap cell prints them."""
    found = CELL.fullmatch(text)
    assert found, text
    hours = float(found["amount"]) / (60 if found["unit"] == "min" else 1)
    return float(found["percent"]), hours, float(found["target"]), float(found["gap"] or 0.0)


def expected_heatmap(corpus: Corpus, rows: str, columns: str, *narrow: str) -> dict[tuple[str, str], tuple[float, float, float]]:
    """(hours, target, gap) per heatmap cell from `collect coverage --format json [narrow…]`: crossed cells summed over
    the other dimension."""
    settings = corpus.store.settings
    result = CliRunner().invoke(app, ["collect", "coverage", "--protocol", PROTOCOL_ID, "--format", "json", *narrow],
                                env={"TURNSCRIBE_HOME": str(settings.home), "TURNSCRIBE_DATABASE_URL": settings.database_url,
                                     "TURNSCRIBE_USER": "manny", "TURNSCRIBE_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for row in json.loads(result.stdout)["rows"]:
        if row["scope"] == "cell":
            where = dict(zip(row["dimensions"], row["values"]))
            cell = sums[(where[rows], where[columns])]
            cell[0] += row["hours"]
            cell[1] += row["target_hours"]
            cell[2] += row["gap_hours"]
    return {key: (h, t, g) for key, (h, t, g) in sums.items()}


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # the browser flow is about the pages; both databases are covered below them
def test_releases_for_consumers_heatmap_and_quality_for_managers(corpus: Corpus, server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        shot = Shots(tmp_path / "screenshots")

        sign_in(page, server, "connie")  # a consumer lands on the releases
        page.get_by_role("heading", name="Releases", exact=True).wait_for()
        links = sorted(page.get_by_role("link").all_inner_texts())
        assert "Releases" in links and not {"Coverage", "Quality", "My queue", "Review queue", "Editor"} & set(links)
        page.get_by_role("link", name="Releases").click()
        page.get_by_role("heading", name="Releases", exact=True).wait_for()
        wait_idle(page)
        errors = page.locator('[data-testid="stException"]')
        assert errors.count() == 0, errors.first.inner_text()
        for fmt in ("lhotse", "kaldi", "eaf", "labelstudio"):
            page.get_by_text(f"turnscribe corpus pull v2 --format {fmt} --out v2-{fmt}").wait_for()
        page.get_by_role("heading", name="Coverage against the protocol").wait_for()  # the card, rendered
        changes = diff_releases(corpus.store, "v1", "v2")
        table = page.locator('[data-testid="stTable"] table').last
        shown = dict(table.evaluate("t => [...t.querySelectorAll('tbody tr')].map(r => [...r.querySelectorAll('td')].map(c => c.innerText))"))
        assert shown == {label: str(count) for label, count in changes["counts"].items()}
        assert changes["counts"]["recordings split changed"] > 0
        shot(page, "releases-consumer")
        page.goto(f"{server}/coverage")  # not in a consumer's navigation: "page not found", then the landing page
        wait_idle(page)
        page.get_by_role("heading", name="Releases", exact=True).wait_for()
        assert page.get_by_role("heading", name="Coverage funnel").count() == 0
        page.keyboard.press("Escape")  # Streamlit's "page not found" dialog
        page.get_by_role("dialog").wait_for(state="detached")
        page.get_by_role("button", name="Sign out").click()
        wait_idle(page)
        sign_in(page, server, "manny")
        page.get_by_role("link", name="Coverage").click()
        page.get_by_role("heading", name="Coverage heatmap").wait_for()
        wait_idle(page)
        heat = page.locator('[data-testid="stTable"] table').first
        header = heat.evaluate("t => [...t.querySelectorAll('thead tr')].pop().innerText")
        check_heatmap(page, expected_heatmap(corpus, "accent", "age_band"))
        shot(page, "coverage-heatmap")
        # the funnel reaches the released stage: v2 holds every approved dialogue
        page.get_by_text("released", exact=True).first.wait_for()
        # the projection: no deadline in this plan; everything was ingested today, so every cell has a rate
        page.get_by_role("heading", name="Projection at the recent intake rate").wait_for()
        page.get_by_text("the protocol sets no deadline").wait_for()
        # narrowed to phones: every figure on the page follows, and equals `collect coverage --device phone`
        page.get_by_role("combobox", name="Device").click()  # Streamlit's selectbox: open, then pick the option
        page.get_by_role("option", name="phone").click()
        page.get_by_text("Showing device=phone only.").wait_for()
        wait_idle(page)
        phone = expected_heatmap(corpus, "accent", "age_band", "--device", "phone")
        assert sum(v[0] for v in phone.values()) < sum(v[0] for v in expected_heatmap(corpus, "accent", "age_band").values())
        check_heatmap(page, phone, filled=1)
        page.get_by_role("heading", name="Projection at the recent intake rate").scroll_into_view_if_needed()
        shot(page, "coverage-projection-phone")

        page.get_by_role("link", name="Quality").click()
        page.get_by_role("heading", name="Quality").wait_for()
        wait_idle(page)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert "None" not in page.locator("section.main, [data-testid='stMain']").first.inner_text()
        shot(page, "quality-throughput")
        page.get_by_role("heading", name="Pre-annotation against the approved transcripts, per cell and condition").wait_for()
        heading = page.get_by_role("heading", name="Pre-annotation against the approved transcripts, per cell and condition")
        heading.scroll_into_view_if_needed()
        page.get_by_text("recordings scored").wait_for()
        shot(page, "quality-preannotation-per-cell")
        page.get_by_role("link", name="Releases").click()
        page.get_by_role("heading", name="Releases", exact=True).wait_for()
        wait_idle(page)
        shot(page, "releases-manager")
        browser.close()
    assert len(list((tmp_path / "screenshots").glob("*.png"))) == 6


def check_heatmap(page, want: dict[tuple[str, str], tuple[float, float, float]], filled: int = 4) -> None:  # type: ignore[no-untyped-def]
    """The page's first heatmap says what `want` (from the CLI's JSON) says, cell by cell."""
    heat = page.locator('[data-testid="stTable"] table').first
    header = heat.evaluate("t => [...t.querySelectorAll('thead tr')].pop().innerText")
    cells = heat.evaluate("t => [...t.querySelectorAll('tbody tr')].map(r => [r.querySelector('th').innerText, "
                          "[...r.querySelectorAll('td')].map(c => c.innerText)])")
    columns = [c.strip() for c in header.split("\t") if c.strip()]
    got = {(row, column): text for row, texts in cells for column, text in zip(columns[-len(texts):], texts, strict=True)}
    assert set(got) == set(want) and len(got) == 6 * 4
    for key, text in got.items():
        percent, hours, target, gap = read_cell(text)
        want_hours, want_target, want_gap = want[key]
        assert target == want_target and gap == pytest.approx(want_gap, abs=0.005)
        assert hours == pytest.approx(want_hours, abs=0.05 / 60) and percent == pytest.approx(100 * want_hours / want_target, abs=0.05)
    assert sum(want[k][0] > 0 for k in want) >= filled, "the dialogues fill several cells"
