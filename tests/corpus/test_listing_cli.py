"""Every listing command's `--format json` parses, carries its schema, and says what its table says.

The table is parsed back from its box drawing, so a column that the JSON and the table fill
from different sources (or a formatter that drops a value) fails here.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from corpus.releases.build import build_release
from review_ui.calibration import start_calibration
from review_ui.tasks import cut_tasks
from protocols.registry import get_protocol
from store import models
from store.accounts import add_user
from tests.corpus.conftest import PASSWORD, PROTOCOL_ID, Corpus
from turnscribe import app

runner = CliRunner()


def invoke(corpus: Corpus, *args: str, user: str = "manny") -> str:
    settings = corpus.store.settings
    result = runner.invoke(app, list(args), env={
        "TURNSCRIBE_HOME": str(settings.home), "TURNSCRIBE_DATABASE_URL": settings.database_url,
        "TURNSCRIBE_USER": user, "TURNSCRIBE_PASSWORD": PASSWORD})
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def table_rows(text: str) -> list[dict[str, str]]:
    """The first rich table's rows as {header: cell}: the header row is drawn with '┃', data rows with '│'; a line
    whose first cell is empty continues the row above (a wrapped cell), joined with a space."""
    header: list[str] = []
    rows = []
    for line in text.splitlines():
        if "┃" in line and rows:
            break  # a second table follows (review status: gold coverage)
        if "┃" in line:
            header = [c.strip() for c in line.strip().strip("┃").split("┃")]
        elif "│" in line and header:
            cells = [c.strip() for c in line.strip().strip("│").split("│")]
            if rows and not cells[0]:
                rows[-1] = {h: f"{rows[-1][h]} {c}".strip() for h, c in zip(header, cells, strict=True)}
            else:
                rows.append(dict(zip(header, cells, strict=True)))
    return rows


def json_rows(corpus: Corpus, schema: str, *args: str, user: str = "manny") -> list[dict[str, Any]]:
    document = json.loads(invoke(corpus, *args, "--format", "json", user=user))
    assert document["schema"] == f"turnscribe.{schema}/1"
    return document["rows"]


def csv_rows(corpus: Corpus, *args: str, user: str = "manny") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(invoke(corpus, *args, "--format", "csv", user=user))))


@pytest.fixture
def released(corpus: Corpus) -> Corpus:
    """Two releases, review tasks and a calibration, so every listing has rows."""
    build_release(corpus.store, corpus.manager, PROTOCOL_ID, "v1", seed=0)
    build_release(corpus.store, corpus.manager, PROTOCOL_ID, "v2", seed=3, reassign_splits=True)  # so the diff moves splits
    with corpus.store.session() as session:
        row, _ = get_protocol(session, PROTOCOL_ID, None)
        cut_tasks(session, row.pk, actor="manny", double_share=0.5, blind_share=0.0, seed=1)
        start_calibration(session, corpus.manager, "annie", "en", "scottish")
        session.commit()
    return corpus


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # the listings' queries are covered on both databases elsewhere
def test_corpus_list_json_and_csv_match_the_table(released: Corpus) -> None:
    rows = json_rows(released, "corpus.list", "corpus", "list", user="connie")
    table = table_rows(invoke(released, "corpus", "list", user="connie"))
    assert [r["name"] for r in rows] == ["v1", "v2"] and len(table) == 2
    for row, cells in zip(rows, table, strict=True):
        assert len(row["release_id"]) == 64 and cells["release id"] == row["release_id"][:16]
        assert row["recordings"] == 6 and row["speakers"] == 11 and row["protocol"] == PROTOCOL_ID
        assert (cells["name"], cells["protocol"], cells["version"], cells["recordings"], cells["speakers"], cells["by"]) == (
            row["name"], row["protocol"], str(row["protocol_version"]), "6", "11", "manny")
        assert cells["hours"] == f"{row['hours']:.3f}" and row["hours"] > 0
        assert cells["created"] == row["created_at"][:16].replace("T", " ")
    assert csv_rows(released, "corpus", "list", user="connie") == [{k: str(v) for k, v in r.items()} for r in rows]


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_corpus_show_and_diff_json_match_their_text(released: Corpus) -> None:
    card = json.loads(invoke(released, "corpus", "show", "v1", "--format", "json", user="connie"))
    markdown = invoke(released, "corpus", "show", "v1", user="connie")
    assert markdown.startswith("# v1") and card["release"]["release_id"] in markdown
    assert f"{card['totals']['speakers']}" in markdown and card["totals"]["speakers"] == 11

    changes = json.loads(invoke(released, "corpus", "diff", "v1", "v2", "--format", "json", user="connie"))
    text = invoke(released, "corpus", "diff", "v1", "v2", user="connie")
    lines = text.splitlines()
    assert lines[0] == "v1 -> v2"
    counts = dict(re.fullmatch(r"  (.+): (\S+)", line).groups() for line in lines[1:1 + len(changes["counts"])])  # type: ignore[union-attr]
    assert counts == {label: str(count) for label, count in changes["counts"].items()}
    moved = changes["recordings"]["split_changed"]
    assert moved and f"  split changed: {', '.join(moved)}" in lines
    refused = runner.invoke(app, ["corpus", "show", "v1", "--format", "csv"])
    assert refused.exit_code == 2  # a card is nested: no CSV


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_protocol_list_and_show(released: Corpus) -> None:
    rows = json_rows(released, "protocol.list", "protocol", "list")
    table = table_rows(invoke(released, "protocol", "list"))
    assert [(r["id"], r["version"]) for r in rows] == [(PROTOCOL_ID, 1)]
    assert [[c["id"], c["version"], c["title"], c["registered"]] for c in table] == [
        [r["id"], str(r["version"]), r["title"], r["registered_at"][:16].replace("T", " ")] for r in rows]
    assert csv_rows(released, "protocol", "list") == [{k: str(v) for k, v in r.items()} for r in rows]
    document = json.loads(invoke(released, "protocol", "show", PROTOCOL_ID, "--format", "json"))
    assert yaml.safe_load(invoke(released, "protocol", "show", PROTOCOL_ID)) == document
    assert document["id"] == PROTOCOL_ID and document["demographics"]


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_review_status_json_matches_the_table(released: Corpus) -> None:
    rows = json_rows(released, "review.status", "review", "status", "--protocol", PROTOCOL_ID)
    table = table_rows(invoke(released, "review", "status", "--protocol", PROTOCOL_ID))
    assert rows and [r["kind"] for r in rows] == [c["kind"] for c in table]
    for row, cells in zip(rows, table, strict=True):
        assert {k: str(v) for k, v in row.items()} == cells
        assert row["total"] == sum(v for k, v in row.items() if k not in ("kind", "total"))
    # six recordings, half of them double-annotated: every task is still open
    assert sum(r["open"] for r in rows) == sum(r["total"] for r in rows) >= 6


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_users_list_json_matches_the_table(released: Corpus) -> None:
    with released.store.session() as session:
        add_user(session, "ada", PASSWORD, ["admin"], actor="test")  # listing accounts is an admin's right
        session.commit()
    rows = json_rows(released, "users.list", "users", "list", user="ada")
    table = table_rows(invoke(released, "users", "list", user="ada"))
    assert [r["username"] for r in rows] == ["ada", "annie", "connie", "manny"]
    annie = rows[1]
    assert annie["roles"] == ["annotator"] and annie["active"] is True
    assert annie["calibrations"] == [{"language": "en", "accent": "scottish", "state": annie["calibrations"][0]["state"]}]
    for row, cells in zip(rows, table, strict=True):
        assert cells["user"] == row["username"] and cells["roles"] == ", ".join(row["roles"])
        assert cells["active"] == ("yes" if row["active"] else "no")
        assert cells["calibration"] == ", ".join(f"{c['language']}/{c['accent'] or '*'}:{c['state']}" for c in row["calibrations"])


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_audit_tail_json_matches_the_table(released: Corpus) -> None:
    # every sign-in is itself audited, so each call's tail moves on by one entry: compare the entries both show
    table = table_rows(invoke(released, "governance", "audit", "tail", "-n", "3"))
    rows = json_rows(released, "governance.audit", "governance", "audit", "tail", "-n", "4")
    assert len(rows) == 4 and [r["pk"] for r in rows] == sorted(r["pk"] for r in rows)
    assert rows[-1]["action"] == "sign_in" and rows[-1]["actor"] == "manny"
    by_pk = {str(r["pk"]): r for r in rows}
    assert [c["pk"] for c in table] == [str(r["pk"]) for r in rows[:3]]
    for cells in table:
        row = by_pk[cells["pk"]]
        assert (cells["actor"], cells["action"], cells["subject"]) == (row["actor"], row["action"], row["subject"])
        assert cells["at"] == row["at"][:19].replace("T", " ")
        assert "".join(cells["details"].split()) == "".join(json.dumps(row["details"], ensure_ascii=False).split())
    with released.store.session() as session:  # the log itself, read independently of the command
        stored = {e.pk: e for e in session.scalars(select(models.AuditEvent).where(models.AuditEvent.pk.in_(list(map(int, by_pk)))))}
    assert [(r["actor"], r["action"], r["subject"], r["details"]) for r in rows] == [
        (stored[r["pk"]].actor, stored[r["pk"]].action, stored[r["pk"]].subject, stored[r["pk"]].details) for r in rows]
    assert any(r["details"] for r in rows), "some entry of the tail carries details"
    as_csv = csv_rows(released, "governance", "audit", "tail", "-n", "5")
    assert [json.loads(r["details"]) for r in as_csv[:4]] == [r["details"] for r in rows]
