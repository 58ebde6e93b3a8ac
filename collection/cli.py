"""`turnscribe collect …`: consent, intake, coverage, duplicate speakers, synthetic data.

Every command but `synthesize` (which writes files only) signs in: consent import and
ingest are the managers' and audited under their name; coverage needs `see_coverage`.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from collection.duplicates_cli import register as register_duplicates
from collection.ray_console import AddressOpt, EngineOpt, ShipAudioOpt, ThreadsOpt, WorkersOpt, check_engine
from protocols.cli import protocol_for_cli
from store.console import Exit, err, fail, out, principal_for_cli, store_for_cli
from store.listing import Column, Listing, ListFormat, emit

app = typer.Typer(help="Intake: consent, ingest, coverage, duplicate speakers.", no_args_is_help=True)
consent_app = typer.Typer(help="The consent registry.", no_args_is_help=True)
app.add_typer(consent_app, name="consent")
register_duplicates(app)


class CoverageFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


@consent_app.command("import")
def consent_import(file: Annotated[Path, typer.Argument(help="Consent records, CSV or JSONL.", exists=True, dir_okay=False)]) -> None:
    """Append consent records (a withdrawal is a new record for the same consent_id)."""
    from collection.consent import import_consents
    from store.do_not_collect import DoNotCollect, DoNotCollectKeyError

    store = store_for_cli()
    principal = principal_for_cli(store, "import_consent")
    try:
        blocked = DoNotCollect.for_store(store)
    except DoNotCollectKeyError as exc:
        fail(str(exc), Exit.FAILED)
    with store.session() as session:
        try:
            result = import_consents(session, file, blocked, actor=principal.username)
        except ValueError as exc:
            fail(str(exc), Exit.USAGE)
        session.commit()
    for line, message in result.errors:
        err.print(f"[red]{file.name}:{line}[/red]: {message}")
    for line, message in result.not_in_force:
        err.print(f"[yellow]{file.name}:{line}[/yellow]: {message}")
    out.print(f"consent: {result.added} record(s) added, {result.unchanged} unchanged, {len(result.errors)} refused")
    raise typer.Exit(Exit.REJECTED if result.errors else Exit.OK)


def print_ingest_summary(report) -> None:  # type: ignore[no-untyped-def]
    """The per-row outcomes that need attention, then the totals."""
    from rich.table import Table

    attention = [o for o in report.outcomes if o.status != "accepted" or o.note]
    if attention:
        table = Table("line", "file", "outcome", "why", title="Rows needing attention", title_justify="left")
        for o in attention:
            why = "; ".join(r.message for r in o.reasons) or o.note
            style = {"rejected": "red", "fault": "bold red", "skipped": "dim"}.get(o.status, "yellow")
            table.add_row(str(o.line), o.path, o.status, why, style=style)
        err.print(table)
    hours = sum(o.duration_s or 0 for o in report.outcomes if o.status == "accepted") / 3600
    summary = Table("accepted", "rejected", "skipped (already in store)", "faults", "hours accepted",
                    title=f"Ingest under {report.protocol_id} v{report.protocol_version}", title_justify="left")
    summary.add_row(str(report.count("accepted")), str(report.count("rejected")), str(report.count("skipped")),
                    str(report.count("fault")), f"{hours:.3f}")
    out.print(summary)
    if report.count("fault"):
        err.print(f"[bold red]{report.count('fault')} row(s) hit a fault[/bold red] (disk, permissions or database): "
                  "nothing of them was kept; fix the cause and run the same manifest again")


def ingest_exit(report) -> Exit:  # type: ignore[no-untyped-def]
    """Faults outrank refusals: a script must know the environment failed, not only that input was bad."""
    if report.count("fault"):
        return Exit.FAULT
    return Exit.REJECTED if report.count("rejected") else Exit.OK


@app.command()
def ingest(
    manifest: Annotated[Path, typer.Argument(help="Manifest, CSV or JSONL; paths relative to its folder.", exists=True, dir_okay=False)],
    protocol: Annotated[str, typer.Option("--protocol", help="Registered protocol id.")],
    version: Annotated[int | None, typer.Option(help="Protocol version (default: newest).")] = None,
    allow_absolute_paths: Annotated[bool, typer.Option(help="Accept absolute paths in the manifest.")] = False,
    engine: EngineOpt = "process", address: AddressOpt = None, workers: WorkersOpt = None, threads_per_worker: ThreadsOpt = 1,
    ship_audio: ShipAudioOpt = False,
) -> None:
    """Check every listed recording and store what passes. Exit 1 if anything was rejected.

    With `--engine ray` the files are decoded and measured by Ray actors; the checks and
    everything stored are the same as in this process, done by this process.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from collection.intake import ingest_manifest
    from collection.manifest import read_manifest

    from store.do_not_collect import DoNotCollectKeyError

    check_engine(engine, address, workers, ship_audio)
    store = store_for_cli()
    principal = principal_for_cli(store, "ingest")
    _, plan = protocol_for_cli(store, protocol, version)
    try:
        total = len(read_manifest(manifest, plan.session.session_attributes())[0])
    except ValueError as exc:
        fail(str(exc), Exit.USAGE)
    if engine == "ray":
        from collection.ray_ingest_cli import ingest_on_cluster

        try:
            ingest_on_cluster(store, principal.username, protocol, version, manifest, total, allow_absolute_paths,
                              address, workers, threads_per_worker, ship_audio)
        except DoNotCollectKeyError as exc:
            fail(str(exc), Exit.FAILED)
    columns = (TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("", total=total)
        try:
            report = ingest_manifest(
                store, protocol, manifest, version=version, allow_absolute=allow_absolute_paths, actor=principal.username,
                on_item=lambda o: progress.update(task, advance=1, description=o.path),
            )
        except DoNotCollectKeyError as exc:
            fail(str(exc), Exit.FAILED)
    print_ingest_summary(report)
    raise typer.Exit(ingest_exit(report))


@app.command()
def coverage(
    protocol: Annotated[str, typer.Option("--protocol", help="Registered protocol id.")],
    version: Annotated[int | None, typer.Option(help="Protocol version (default: newest).")] = None,
    format: Annotated[CoverageFormat, typer.Option("--format", help="table, csv or json.")] = CoverageFormat.table,
    output: Annotated[Path | None, typer.Option("--out", help="Write csv/json here instead of stdout.")] = None,
    png: Annotated[Path | None, typer.Option(help="Also write a heatmap PNG here.")] = None,
    limit: Annotated[int, typer.Option(help="Rows per table (table format).")] = 20,
    site: Annotated[str | None, typer.Option(help="Only recordings whose session declared this site.")] = None,
    device: Annotated[str | None, typer.Option(help="Only recordings made on this device (a protocol device).")] = None,
    noise_condition: Annotated[str | None, typer.Option("--noise-condition", help="Only this declared noise condition.")] = None,
) -> None:
    """Collected vs target per dimension and crossed cell, most behind first (optionally one site/device/noise condition)."""
    from collection.coverage import RecordingFilter, compute_coverage
    from collection.coverage_formats import coverage_csv, coverage_heatmap, coverage_json, print_coverage

    store = store_for_cli()
    principal_for_cli(store, "see_coverage")
    row, spec = protocol_for_cli(store, protocol, version)
    allowed = spec.allowed_values()
    for name, value in (("device", device), ("noise_condition", noise_condition)):
        if value is not None and value not in allowed[name]:
            fail(f"unknown {name} {value!r}: protocol {spec.id} v{spec.version} allows {', '.join(allowed[name])}", Exit.USAGE)
    with store.session() as session:
        report = compute_coverage(session, row, spec, where=RecordingFilter(site, device, noise_condition))
    if format is CoverageFormat.table:
        print_coverage(report, out, limit=limit)
    else:
        text = coverage_csv(report) if format is CoverageFormat.csv else coverage_json(report)
        if output:
            output.write_text(text)
            err.print(f"wrote {output}")
        else:
            typer.echo(text, nl=False)
    if png:
        coverage_heatmap(report, png)
        err.print(f"wrote {png}")


@app.command()
def projection(
    protocol: Annotated[str, typer.Option("--protocol", help="Registered protocol id.")],
    version: Annotated[int | None, typer.Option(help="Protocol version (default: newest).")] = None,
    weeks: Annotated[int, typer.Option(min=1, max=52, help="Weeks of intake the rate is measured over.")] = 4,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Project from this day (YYYY-MM-DD; default today, UTC).")] = None,
    site: Annotated[str | None, typer.Option(help="Only recordings whose session declared this site.")] = None,
    device: Annotated[str | None, typer.Option(help="Only recordings made on this device.")] = None,
    noise_condition: Annotated[str | None, typer.Option("--noise-condition", help="Only this declared noise condition.")] = None,
    format: Annotated[ListFormat, typer.Option("--format", help="table, json or csv.")] = ListFormat.table,
) -> None:
    """When each cell meets its hours target at the recent intake rate; cells that will miss the deadline first."""
    import datetime as dt

    from collection.coverage import RecordingFilter
    from collection.projection import coverage_projection
    from store.clock import utcnow

    store = store_for_cli()
    principal_for_cli(store, "see_coverage")
    row, spec = protocol_for_cli(store, protocol, version)
    try:
        day = dt.date.fromisoformat(as_of) if as_of else utcnow().date()
    except ValueError:
        fail(f"--as-of {as_of!r}: write a day as YYYY-MM-DD", Exit.USAGE)
    with store.session() as session:
        found = coverage_projection(session, row, spec, as_of=day, weeks=weeks,
                                    where=RecordingFilter(site, device, noise_condition))
    weekly = ", ".join(f"{w:%d %b} {60 * h:.1f} min" for w, h in found.weekly_hours)
    deadline = f"deadline {found.deadline}" if found.deadline else "no deadline set"
    listing = Listing("collect.projection", [Column(k, k.replace("_", " ")) for k in PROJECTION_COLUMNS],
                      title=f"{spec.id} v{spec.version}: as of {day}, {deadline}; intake per week: {weekly}")
    for cell in found.rows:
        values = cell.as_dict()
        listing.add(**{k: values[k] for k in PROJECTION_COLUMNS})
    emit(listing, format)


PROJECTION_COLUMNS = ("label", "hours", "target_hours", "gap_hours", "recent_hours", "rate_hours_per_week",
                      "projected_on", "deadline", "status")


@app.command("import-labelstudio")
def import_labelstudio_cmd(
    file: Annotated[Path, typer.Argument(help="Label Studio JSON export (a list of tasks).", exists=True, dir_okay=False)],
    audio_root: Annotated[Path, typer.Option("--audio-root", help="Folder the tasks' audio paths are relative to.",
                                             exists=True, file_okay=False)],
    author: Annotated[list[str] | None, typer.Option("--author", help="LABEL_STUDIO_USER=USERNAME: a Label Studio user id "
                                                     "or e-mail and the Turnscribe account it is (repeatable).")] = None,
) -> None:
    """Bring Label Studio annotations in as people's revisions of recordings already ingested. Exit 1 if any was refused."""
    from collection.labelstudio import LabelStudioError, import_labelstudio
    from store.console import principal_for_cli

    authors: dict[str, str] = {}
    for pair in author or []:
        key, sep, username = pair.partition("=")
        if not sep or not key.strip() or not username.strip():
            fail(f"--author {pair!r}: write LABEL_STUDIO_USER=USERNAME", Exit.USAGE)
        authors[key.strip()] = username.strip()
    store = store_for_cli()
    principal = principal_for_cli(store, "assign")
    with store.session() as session:
        try:
            report = import_labelstudio(session, principal, file, audio_root, authors)
        except LabelStudioError as exc:
            fail(str(exc), Exit.USAGE)
        session.commit()
    for o in report.outcomes:
        if o.status == "refused":
            where = f"task {o.task}" + (f" annotation {o.annotation}" if o.annotation is not None else "")
            err.print(f"[red]refused[/red] {where}: {o.reason}")
    out.print(f"Label Studio: {report.count('imported')} revision(s) imported, {report.count('unchanged')} unchanged, "
              f"{report.count('refused')} refused")
    raise typer.Exit(Exit.REJECTED if report.count("refused") else Exit.OK)


@app.command()
def synthesize(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the dialogues, truth and manifests.")],
    count: Annotated[int, typer.Option(help="Number of dialogues.")] = 6,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 0,
    realistic: Annotated[bool, typer.Option(help="Real-world conditions per device and noise condition: telephone "
                                                 "line, rooms, babble/traffic/office noise, level differences, more "
                                                 "overlapping backchannels.")] = False,
) -> None:
    """Generate synthetic two-speaker dialogues with espeak-ng (needs espeak-ng and sox)."""
    from collection.synthetic.generator import generate_dialogues

    paths = generate_dialogues(out_dir, count=count, seed=seed, realistic=realistic)
    out.print(f"wrote {len(paths)} dialogues to {out_dir}")
