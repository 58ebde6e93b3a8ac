"""`turnscribe pretranscribe`, `turnscribe transcribe` and `turnscribe eval`.

`pretranscribe` changes the store and `eval` exposes its transcripts' scores, so both sign
in (managers; `eval` needs `see_quality`). `transcribe` works on loose files the caller
already holds and writes beside them: it never opens the store, so there is nothing to
sign in to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from collection.ray_console import AddressOpt, EngineOpt, ShipAudioOpt, ThreadsOpt, WorkersOpt, check_engine
from protocols.cli import protocol_for_cli
from store.console import Exit, err, fail, out, principal_for_cli, store_for_cli

ModelOpt = Annotated[str, typer.Option("--model", help="'tiny.en' (embedded), 'base', an imported bundle or a CTranslate2 Whisper directory.")]
DiarizerOpt = Annotated[str, typer.Option("--diarizer", help="'embedded' (default), 'pyannote' (with --pipeline) or an imported pipeline bundle.")]
ProtocolModelOpt = Annotated[str | None, typer.Option("--model", help="'tiny.en', 'base', an imported bundle or a CTranslate2 "
                                                       "Whisper directory (default: the protocol's, `models use`).")]
ProtocolDiarizerOpt = Annotated[str | None, typer.Option("--diarizer", help="'embedded', 'pyannote' (with --pipeline) or an "
                                                          "imported pipeline bundle (default: the protocol's, `models use`).")]
PipelineOpt = Annotated[Path | None, typer.Option("--pipeline", help="Local pyannote pipeline directory (with --diarizer pyannote).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
FallbackOpt = Annotated[bool, typer.Option("--fallback-to-cpu", help="Use the CPU when a requested GPU is missing.")]
BatchedOpt = Annotated[bool, typer.Option("--batched/--sequential", help="faster-whisper's batched pipeline or sequential decoding.")]


def _settings(model: str, diarizer: str, pipeline: Path | None, device: str, fallback: bool, batched: bool,  # type: ignore[no-untyped-def]
              models_dir: Path):
    """What to run, every engine alike; a diarizer bundle's name resolves to its pipeline directory."""
    from asr.model_bundles import diarizer_choice
    from asr.preannotate import PreannotationSettings
    from asr.transcriber import options_for

    if diarizer != "pyannote":  # 'embedded' or an imported pipeline bundle's name
        diarizer, pipeline = diarizer_choice(diarizer, models_dir)
    return PreannotationSettings(asr_model=model, asr=options_for(model, batched=batched), diarizer=diarizer,
                                 pipeline_dir=pipeline, device=device, fallback_to_cpu=fallback)


def _preannotator(model: str, diarizer: str, pipeline: Path | None, device: str, fallback: bool, batched: bool):  # type: ignore[no-untyped-def]
    from asr.devices import DeviceUnavailable
    from asr.models import ModelUnavailable
    from asr.preannotate import Preannotator
    from store.settings import load_settings

    models_dir = load_settings().models_dir
    try:
        return Preannotator(_settings(model, diarizer, pipeline, device, fallback, batched, models_dir), models_dir)
    except (ModelUnavailable, DeviceUnavailable, RuntimeError, ValueError) as exc:
        fail(str(exc), Exit.USAGE)


def _protocol_models(store, protocol_id: str, model: str | None, diarizer: str | None) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The models asked for, else the protocol's defaults (`models use`), else tiny.en and the embedded diarizer.

    A chosen bundle whose files no longer have the checksum it was chosen with (re-imported
    under the same name) is refused: the choice was made on evidence about other files.
    """
    from asr.model_bundles import BundleError, find_bundle
    from asr.model_choice import protocol_choices
    from store.settings import load_settings

    with store.session() as session:
        choices = protocol_choices(session, protocol_id)
    for asked, choice in ((model, choices["asr"]), (diarizer, choices["diarization"])):
        if asked is None and choice.checksum is not None:
            try:
                current = find_bundle(choice.bundle, load_settings().models_dir).checksum
            except BundleError as exc:
                fail(f"{protocol_id}'s {choice.role} model: {exc}", Exit.USAGE)
            if current != choice.checksum:
                fail(f"{protocol_id}'s {choice.role} model {choice.bundle} was chosen with checksum {choice.checksum[:16]}, "
                     f"its files now hash to {current[:16]}: run `turnscribe models use` again", Exit.REJECTED, label="refused")
    return model or choices["asr"].bundle, diarizer or choices["diarization"].bundle


def pretranscribe(
    protocol: Annotated[str, typer.Option("--protocol", help="Registered protocol id.")],
    version: Annotated[int | None, typer.Option(help="Protocol version (default: newest).")] = None,
    model: ProtocolModelOpt = None, diarizer: ProtocolDiarizerOpt = None, pipeline: PipelineOpt = None,
    device: DeviceOpt = "auto", fallback_to_cpu: FallbackOpt = False, batched: BatchedOpt = False,
    lease_minutes: Annotated[float, typer.Option(min=0.1, help="How long a claimed recording stays this run's: "
                                                 "longer than one recording takes; a crashed run's claims expire after it.")] = 30.0,
    engine: EngineOpt = "process", address: AddressOpt = None, workers: WorkersOpt = None, threads_per_worker: ThreadsOpt = 1,
    ship_audio: ShipAudioOpt = False,
) -> None:
    """Pre-annotate every accepted recording without a pre-annotation (resumable; runs at once share the work)."""
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from asr.batch import pending_recordings, pretranscribe as run_batch

    store = store_for_cli()
    principal = principal_for_cli(store, "pretranscribe")
    row, spec = protocol_for_cli(store, protocol, version)
    check_engine(engine, address, workers, ship_audio)
    pending = pending_recordings(store, row)
    if not pending:
        out.print("nothing to pre-annotate: every accepted recording has a pre-annotation")
        raise typer.Exit(Exit.OK)
    model, diarizer = _protocol_models(store, row.protocol_id, model, diarizer)
    if engine == "ray":
        from asr.models import ModelUnavailable
        from asr.ray_cli import pretranscribe_on_cluster

        try:
            settings = _settings(model, diarizer, pipeline, device, fallback_to_cpu, batched, store.settings.models_dir)
        except (ModelUnavailable, RuntimeError, ValueError) as exc:
            fail(str(exc), Exit.USAGE)
        pretranscribe_on_cluster(store, principal.username, row, spec, pending, settings, address, workers,
                                 threads_per_worker, ship_audio, lease_minutes)
    preannotator = _preannotator(model, diarizer, pipeline, device, fallback_to_cpu, batched)
    total_hours = sum(r.duration_s or 0 for r in pending) / 3600
    columns = (TextColumn("pre-annotate"), BarColumn(), TextColumn("{task.completed:.3f}/{task.total:.3f} h audio"),
               TextColumn("{task.description}"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("", total=total_hours)
        started = time.perf_counter()

        def advance(recording, seconds: float) -> None:  # type: ignore[no-untyped-def]
            done = progress.tasks[0].completed + seconds / 3600
            rtf = (time.perf_counter() - started) / max(done * 3600, 1e-9)
            progress.update(task, completed=done, description=f"RTF {rtf:.3f}  {recording.source_name}")

        try:
            report = run_batch(store, row, spec, preannotator, on_done=advance, actor=principal.username,
                               lease_s=lease_minutes * 60)
        except KeyboardInterrupt:
            err.print("[yellow]interrupted: finished recordings are stored; run again to resume[/yellow]")
            raise typer.Exit(130) from None
    print_batch_report(report)
    raise typer.Exit(Exit.REJECTED if report.failed else Exit.OK)


def print_batch_report(report) -> None:  # type: ignore[no-untyped-def]
    """The totals table (its first column is the count stored), then failures, lost leases and flags."""
    from rich.table import Table

    table = Table("pre-annotated", "failed", "audio h", "real-time factor", title="Pre-annotation", title_justify="left")
    table.add_row(str(len(report.done)), str(len(report.failed)), f"{report.audio_seconds / 3600:.3f}", f"{report.real_time_factor:.3f}")
    out.print(table)
    for pk, message in report.failed:
        err.print(f"[red]recording {pk} failed[/red]: {message}")
    for pk in report.lost:
        err.print(f"[yellow]recording {pk}[/yellow]: its lease expired and another run stored the pre-annotation first "
                  "(raise --lease-minutes); this run's result was dropped")
    for pk, flag in report.flags:
        err.print(f"[yellow]recording {pk}[/yellow]: {flag}")


def transcribe(
    files: Annotated[list[Path], typer.Argument(help="Audio files (any format intake accepts).", exists=True, dir_okay=False)],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for <name>.json, .rttm and .stm.")],
    speakers: Annotated[int | None, typer.Option("--speakers", help="Number of speakers, when known.")] = None,
    language: Annotated[str | None, typer.Option(help="Force a language (default: detect).")] = None,
    model: ModelOpt = "tiny.en", diarizer: DiarizerOpt = "embedded", pipeline: PipelineOpt = None,
    device: DeviceOpt = "auto", fallback_to_cpu: FallbackOpt = False, batched: BatchedOpt = False,
) -> None:
    """Pre-annotate loose files outside the store; writes turns as JSON, RTTM and STM per file."""
    from asr.formats import write_turn_files
    from collection.decoding import AudioDecodeError, decode, to_working_rate

    preannotator = _preannotator(model, diarizer, pipeline, device, fallback_to_cpu, batched)
    failed = 0
    for path in files:
        try:
            decoded = decode(path)
        except AudioDecodeError as exc:
            err.print(f"[red]{path}[/red]: {exc}")
            failed += 1
            continue
        result = preannotator(to_working_rate(decoded.samples, decoded.sample_rate), num_speakers=speakers, language=language)
        written = write_turn_files(result.turns, out_dir, path.stem, {"params": result.params, "flags": result.flags,
                                                                    "language": result.language})
        out.print(f"{path.name}: {len(result.turns)} turns, {result.duration:.1f} s audio, RTF {result.real_time_factor:.3f} -> "
                  + ", ".join(p.name for p in written))
        for flag in result.flags:
            err.print(f"[yellow]{path.name}[/yellow]: {flag}")
    raise typer.Exit(Exit.REJECTED if failed else Exit.OK)


def print_evaluation(report, title: str) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    def pct(v: float | None) -> str:
        return "–" if v is None else f"{100 * v:.1f}%"

    def seconds(v: float | None) -> str:
        return "–" if v is None else f"{v:.2f} s"

    table = Table("group", "files", "WER", "cpWER", "DER", "false alarm", "missed", "confusion", "JER",
                  "boundary (median)", title=title, title_justify="left")
    rows = [("overall", report.overall)] + [(f"{k}={v}", s) for (k, v), s in sorted(report.groups.items())]
    for name, score in rows:
        s = score.summary()
        table.add_row(name, str(s["files"]), pct(s["wer"]), pct(s["cpwer"]), pct(s["der"]), pct(s["der_false_alarm"]),
                      pct(s["der_miss"]), pct(s["der_confusion"]), pct(s["jer"]), seconds(s["boundary_median_s"]),
                      style="bold" if name == "overall" else "")
    out.print(table)
    err.print("DER = false alarm + missed + confusion, over reference speech (no collar, overlap scored); "
              "boundary: median |start|/|end| error of each reference turn against its best-overlapping turn")
    if report.missing:
        err.print(f"[yellow]no reference for[/yellow]: {', '.join(report.missing)}")


def evaluate(
    reference: Annotated[Path, typer.Option("--reference", help="Folder of <name>.stm / .turns.json / .rttm references.", exists=True, file_okay=False)],
    protocol: Annotated[str, typer.Option("--protocol", help="Registered protocol id.")],
    version: Annotated[int | None, typer.Option(help="Protocol version (default: newest).")] = None,
    revision: Annotated[str, typer.Option(help="Score the 'model' pre-annotation or the first 'person' revision.")] = "model",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON.")] = None,
) -> None:
    """WER (jiwer), DER/JER (pyannote.metrics) and cpWER (meeteval), overall and per group."""
    import json

    from asr.evaluation import evaluate_store

    store = store_for_cli()
    principal_for_cli(store, "see_quality")
    row, _ = protocol_for_cli(store, protocol, version)
    report = evaluate_store(store, row, reference, author_kind=revision)
    if not report.per_file:
        fail("no stored revision has a reference in that folder", Exit.REJECTED, label="nothing to score")
    print_evaluation(report, f"{protocol}: {revision} revisions against {reference}")
    if json_out:
        json_out.write_text(json.dumps({
            "overall": report.overall.summary(),
            "groups": {f"{k}={v}": s.summary() for (k, v), s in report.groups.items()},
            "files": {k: s.summary() for k, s in report.per_file.items()}, "missing": report.missing,
        }, indent=2))


def register(app: typer.Typer) -> None:
    app.command("pretranscribe")(pretranscribe)
    app.command("transcribe")(transcribe)
    app.command("eval")(evaluate)
