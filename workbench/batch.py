"""Batch analysis: every clip of a folder through every checkpoint, as tidy tables.

``python -m workbench.batch CLIPS_DIR --checkpoint A --checkpoint B --out results/``

One *unit* is clip x checkpoint. Each unit is analysed by :func:`analyse_unit` (pure with
respect to the filesystem: arrays and DataFrames out) and its result written by the driver to
``parts/<key>.parquet`` (block/component rows), ``parts/<key>.heads.parquet`` (per-head scores)
or ``parts/<key>.error.parquet`` (a failed unit), each atomically (temp file + rename). A unit
with a part is done: a rerun skips it (resume), an interrupted run loses at most the units in
flight, and the final tables are always assembled from ``parts/`` alone.

Workers: a local process pool (``--workers``, default all cores; 1 = in-process, sequential)
or Dask distributed (``--scheduler tcp://host:port`` or ``--local-cluster N``), one task per
batch of units. Workers return results and the driver writes them, so Dask workers need to
read the clips and checkpoints (shared filesystem) but never write. Models are loaded once per
worker process (:data:`_MODELS`, keyed by checkpoint path and mtime), torch uses one thread.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from echo_core.errors import EchoError, VoicingError
from workbench.batch_conditions import COLUMNS as CONDITION_COLUMNS
from workbench.batch_conditions import parse_conditions, summarise_conditions
from workbench.batch_heads import summarise_head_scores

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
PARTS = "parts"
TABLES = ("results", "head_scores", "errors", "summary", "conditions",
          "conditions_summary", "head_scores_summary")
TIMING_COLUMNS = ("seconds",)  # differ run to run: left out when comparing runs
CLIP_COLUMNS = ("clip", "checkpoint", "checkpoint_path", "duration_s", "f0_median", "f0_mean",
                "f0_min", "f0_max", "f0_std", "voiced_fraction", "n_frames", "n_voiced",
                "transcript", "reference", "wer", "cer", "head_scores_note", "seconds")
ERROR_COLUMNS = ("clip", "checkpoint", "checkpoint_path", "error_type", "message")

_MODELS: dict = {}  # per worker process: (path, mtime) -> (model, tokenizer)


# ============================================================================= inputs

def discover_clips(root) -> list[str]:
    """Audio files under ``root`` (recursive), as sorted POSIX paths relative to ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise EchoError(f"clips folder not found: {root}; accepted: a folder of "
                        f"{'/'.join(AUDIO_SUFFIXES)} files (searched recursively)")
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def read_transcripts(root, clips: Sequence[str], csv_path=None) -> dict[str, str]:
    """Reference text per clip: a ``path,text`` CSV (paths relative to ``root`` or absolute)
    wins over a sidecar ``<clip>.txt`` (same name, .txt instead of the audio suffix)."""
    root = Path(root)
    refs = {}
    for clip in clips:
        sidecar = (root / clip).with_suffix(".txt")
        if sidecar.is_file():
            refs[clip] = sidecar.read_text(encoding="utf-8").strip()
    if csv_path is not None:
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"path", "text"} <= set(reader.fieldnames):
                raise EchoError(f"{csv_path}: transcript CSV needs the columns path,text; got "
                                f"{reader.fieldnames}")
            for row in reader:
                p = Path(row["path"])
                rel = p.resolve().relative_to(root.resolve()).as_posix() if p.is_absolute() \
                    else p.as_posix()
                refs[rel] = row["text"].strip()
    return refs


def checkpoint_labels(paths: Sequence) -> dict[str, str]:
    """label (folder name) -> absolute path; two checkpoints with one name are refused."""
    labels = {}
    for p in paths:
        path = Path(p).resolve()
        if not path.exists():
            raise EchoError(f"checkpoint not found: {p}; accepted: a checkpoint folder "
                            "(config.json + model.safetensors) or a single weights file")
        label = path.name if path.is_dir() else path.stem
        if label in labels and labels[label] != str(path):
            raise EchoError(f"two checkpoints are both called {label!r}: {labels[label]} and "
                            f"{path}; accepted: checkpoints with distinct folder names")
        labels[label] = str(path)
    return labels


def unit_key(clip: str, checkpoint: str) -> str:
    """File-name-safe id of a clip x checkpoint unit."""
    return hashlib.sha1(f"{clip}\0{checkpoint}".encode()).hexdigest()[:20]


# ============================================================================= one unit

def _model(path: str):
    """(model, tokenizer or None), loaded once per worker process."""
    from echo_core import decode
    from echo_core.checkpoint import load_checkpoint

    key = (path, os.stat(path).st_mtime_ns)
    if key not in _MODELS:
        model = load_checkpoint(path)
        try:
            tokenizer = decode.load_tokenizer(model)
        except EchoError:
            tokenizer = None
        _MODELS[key] = (model, tokenizer)
    return _MODELS[key]


def _clip_f0(samples: np.ndarray):
    from echo_core import pitch
    from echo_core.audio import SAMPLE_RATE

    return pitch.extract_f0(samples, SAMPLE_RATE)


def _theta_rows(model, f0_frames: np.ndarray) -> dict[str, dict]:
    """Static base and theta in force of each block's self-attention, keyed by block path
    (``path.``): interventions.theta_table's rows (one definition with the Model and
    Interventions views; a model without F0 quotes the theta its learned frequencies imply)."""
    from echo_core.interventions import theta_table

    table = theta_table(model, f0_frames)
    return {row.module[: -len("attna")]: dict(theta=row.theta, theta_in_force=row.theta_in_force)
            for row in table.itertuples() if row.module.endswith(".attna")}


def analyse_unit(clip_path: str, clip: str, label: str, checkpoint: str,
                 reference: str | None, audio=None, track=None,
                 conditions: Sequence[str] = ()) -> dict:
    """Everything measured for one clip x checkpoint: {"rows", "heads", "conditions"}
    DataFrames. ``audio``/``track`` let a batch share one decode and one F0 track across
    checkpoints; ``conditions`` (pitch condition names, see batch_conditions) adds one row per
    condition against the true F0."""
    from echo_core import clip_run, decode, hooks, pitch
    from echo_core import head_scores as hs
    from echo_core.audio import SAMPLE_RATE, load_audio

    start = time.perf_counter()
    audio = audio if audio is not None else load_audio(clip_path)
    track = track if track is not None else _clip_f0(audio.samples)
    model, tokenizer = _model(checkpoint)
    mel, f0_frames = clip_run.clip_features(model, audio.samples, SAMPLE_RATE, track)
    run = clip_run.run_clip(model, mel, f0_frames, tokenizer=tokenizer, capture="forward",
                            samples=audio.samples)
    cache, uses_f0, transcript = run.cache, run.uses_f0, run.transcript
    wer = cer = np.nan
    if reference is not None and tokenizer is not None:
        wer, cer = decode.wer_cer([tokenizer.normalize(reference)], [transcript])

    note = ""
    try:
        heads = hs.head_score_table(cache, model, f0_frames, f0_given=uses_f0)
    except VoicingError as e:
        heads, note = pd.DataFrame(), f"head scores skipped: {e}"

    blocks = hooks.gate_mlp_ratios(cache).drop(columns=["status"])
    thetas = _theta_rows(model, f0_frames)
    blocks["theta"] = [thetas.get(b, {}).get("theta", np.nan) for b in blocks["block"]]
    blocks["theta_in_force"] = [thetas.get(b, {}).get("theta_in_force", np.nan)
                                for b in blocks["block"]]
    blocks = blocks.rename(columns={"block": "name"})
    blocks.insert(0, "record", "block")
    components = hooks.component_statistics(cache, "activations").drop(columns=["source"])
    components = components.rename(columns={"component": "name", "avg": "activation_mean",
                                            "min": "activation_min", "max": "activation_max",
                                            "samples": "activation_samples"})
    components.insert(0, "record", "component")
    rows = pd.concat([blocks, components], ignore_index=True)
    stats = pitch.f0_statistics(track)
    clip_values = dict(clip=clip, checkpoint=label, checkpoint_path=checkpoint,
                       duration_s=audio.duration,
                       **{f"f0_{k}": stats[k] for k in ("median", "mean", "min", "max", "std")},
                       voiced_fraction=stats["voiced_fraction"], n_frames=stats["n_frames"],
                       n_voiced=stats["n_voiced"], transcript=transcript, reference=reference,
                       wer=wer, cer=cer, head_scores_note=note,
                       seconds=time.perf_counter() - start)
    for i, (name, value) in enumerate(clip_values.items()):
        rows.insert(i, name, [value] * len(rows))
    if len(heads):
        heads.insert(0, "checkpoint", label)
        heads.insert(0, "clip", clip)
    conditions_table = pd.DataFrame()
    if conditions:
        from workbench.batch_conditions import condition_rows

        conditions_table = condition_rows(model, audio.samples, SAMPLE_RATE, conditions, clip,
                                          label)
    return {"rows": rows, "heads": heads, "conditions": conditions_table}


def run_batch(units: Sequence[dict]) -> list[dict]:
    """Analyse a batch of units (dicts: clip_path, clip, label, checkpoint, reference); each
    result is {"unit", "rows", "heads"} or {"unit", "error"}. Never raises for a bad clip."""
    import torch

    threads, decoded = torch.get_num_threads(), {}
    torch.set_num_threads(1)  # one process per core: intra-op threads would oversubscribe
    try:
        return [_run_unit(unit, decoded) for unit in units]
    finally:
        torch.set_num_threads(threads)  # matters when run in-process (--workers 1)


def _run_unit(unit: dict, decoded: dict) -> dict:
    """One unit, reusing the previous unit's decoded audio and F0 when it is the same clip."""
    from echo_core.audio import load_audio

    try:
        if unit["clip_path"] not in decoded:
            decoded.clear()  # keep one clip's audio at a time
            audio = load_audio(unit["clip_path"])
            decoded[unit["clip_path"]] = (audio, _clip_f0(audio.samples))
        audio, track = decoded[unit["clip_path"]]
        result = analyse_unit(unit["clip_path"], unit["clip"], unit["label"],
                              unit["checkpoint"], unit["reference"], audio, track,
                              unit.get("conditions", ()))
        return {"unit": unit, **result}
    except Exception as e:  # noqa: BLE001  recorded in the errors table; the run goes on
        # type name and text only: some EchoError subclasses take extra arguments and would
        # not unpickle on the driver
        return {"unit": unit, "error": (type(e).__name__, str(e))}


# ============================================================================= parts on disk

def _write_atomic(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def write_result(parts: Path, result: dict) -> None:
    """Heads first, main part last: the main (or error) part marks the unit done."""
    unit, key = result["unit"], unit_key(result["unit"]["clip"], result["unit"]["label"])
    if "error" in result:
        error_type, message = result["error"]
        _write_atomic(pd.DataFrame([dict(clip=unit["clip"], checkpoint=unit["label"],
                                         checkpoint_path=unit["checkpoint"],
                                         error_type=error_type, message=message)]),
                      parts / f"{key}.error.parquet")
        return
    if len(result["heads"]):
        _write_atomic(result["heads"], parts / f"{key}.heads.parquet")
    if len(result.get("conditions", ())):
        _write_atomic(result["conditions"], parts / f"{key}.conditions.parquet")
    _write_atomic(result["rows"], parts / f"{key}.parquet")


def done_units(parts: Path, retry_errors: bool = False) -> set[str]:
    """Keys of units with a main part (or an error part, unless ``retry_errors``)."""
    done = {p.name[:-len(".parquet")] for p in parts.glob("*.parquet")
            if p.name.count(".") == 1}
    if not retry_errors:
        done |= {p.name[:-len(".error.parquet")] for p in parts.glob("*.error.parquet")}
    return done


def _concat(paths: Iterable[Path], columns: Sequence[str] = ()) -> pd.DataFrame:
    frames = [pd.read_parquet(p) for p in sorted(paths)]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(columns))
    return pd.concat(frames, ignore_index=True)


def assemble(out_dir) -> dict[str, pd.DataFrame]:
    """Final tables from ``parts/`` (Parquet + CSV each): results, head_scores, errors,
    summary. A unit retried successfully drops its old error record."""
    out_dir = Path(out_dir)
    parts = out_dir / PARTS
    main = [p for p in parts.glob("*.parquet") if p.name.count(".") == 1]
    ok = {p.name.split(".")[0] for p in main}
    tables = {
        "results": _concat(main, CLIP_COLUMNS),
        "head_scores": _concat(p for p in parts.glob("*.heads.parquet")
                               if p.name.split(".")[0] in ok),
        "errors": _concat((p for p in parts.glob("*.error.parquet")
                           if p.name.split(".")[0] not in ok), ERROR_COLUMNS),
        "conditions": _concat((p for p in parts.glob("*.conditions.parquet")
                               if p.name.split(".")[0] in ok), CONDITION_COLUMNS),
    }
    tables["results"] = _sorted(tables["results"], ["clip", "checkpoint", "record", "name"])
    tables["head_scores"] = _sorted(tables["head_scores"],
                                    ["clip", "checkpoint", "kind", "layer", "head"])
    tables["errors"] = _sorted(tables["errors"], ["clip", "checkpoint"])
    tables["conditions"] = _sorted(tables["conditions"], ["clip", "checkpoint"])
    tables["summary"] = summarise(tables["results"])
    tables["conditions_summary"] = summarise_conditions(tables["conditions"])
    tables["head_scores_summary"] = summarise_head_scores(tables["head_scores"])
    for name, df in tables.items():
        _write_atomic(df, out_dir / f"{name}.parquet")
        tmp = out_dir / f".{name}.csv.tmp"
        df.to_csv(tmp, index=False)
        os.replace(tmp, out_dir / f"{name}.csv")
    # read back: the same dtypes as load_results gives later (parquet strings, not object)
    return {name: pd.read_parquet(out_dir / f"{name}.parquet") for name in tables}


def _sorted(df: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    by = [c for c in by if c in df.columns]
    return df.sort_values(by, kind="stable").reset_index(drop=True) if by and len(df) else df


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Per checkpoint and block: clips, mean and spread (std) of the gate/MLP ratio, sparsity
    difference and theta in force; per checkpoint the mean WER/CER over clips with a reference."""
    cols = ["checkpoint", "block", "clips", "ratio_mean", "ratio_std", "sparsity_difference_mean",
            "sparsity_difference_std", "theta_in_force_mean", "theta_in_force_std", "wer_mean",
            "cer_mean"]
    if not len(results) or "record" not in results:
        return pd.DataFrame(columns=cols)
    blocks = results[results["record"] == "block"]
    g = blocks.groupby(["checkpoint", "name"], sort=True)
    summary = pd.DataFrame({
        "clips": g["clip"].nunique(),
        "ratio_mean": g["ratio"].mean(), "ratio_std": g["ratio"].std(),
        "sparsity_difference_mean": g["sparsity_difference"].mean(),
        "sparsity_difference_std": g["sparsity_difference"].std(),
        "theta_in_force_mean": g["theta_in_force"].mean(),
        "theta_in_force_std": g["theta_in_force"].std()}).reset_index()
    summary = summary.rename(columns={"name": "block"})
    per_clip = results.drop_duplicates(["clip", "checkpoint"])
    wer = per_clip.groupby("checkpoint")[["wer", "cer"]].mean()
    summary["wer_mean"] = summary["checkpoint"].map(wer["wer"])
    summary["cer_mean"] = summary["checkpoint"].map(wer["cer"])
    return summary[cols]


# ============================================================================= running

def plan(clips_dir, checkpoints: Sequence, out_dir, transcripts=None,
         retry_errors: bool = False, conditions: Sequence[str] = ()) -> tuple[list[dict], int]:
    """(units still to do, units already done)."""
    root = Path(clips_dir).resolve()
    clips = discover_clips(root)
    refs = read_transcripts(root, clips, transcripts)
    labels = checkpoint_labels(checkpoints)
    done = done_units(Path(out_dir) / PARTS, retry_errors)
    units = [dict(clip_path=str(root / clip), clip=clip, label=label, checkpoint=path,
                  reference=refs.get(clip), conditions=list(conditions))
             for clip in clips for label, path in labels.items()]
    todo = [u for u in units if unit_key(u["clip"], u["label"]) not in done]
    return todo, len(units) - len(todo)


def _batches(units: list[dict], size: int) -> list[list[dict]]:
    """Consecutive units (a clip's checkpoints together, so it is decoded once per batch)."""
    return [units[i:i + size] for i in range(0, len(units), size)]


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _local(batches, workers: int):
    """Yield results batch by batch: in-process when workers == 1, else a spawn pool."""
    if workers == 1:
        for batch in batches:
            yield run_batch(batch)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                             initializer=_init_worker) as pool:
        futures = [pool.submit(run_batch, b) for b in batches]
        for future in as_completed(futures):
            yield future.result()


def _dask(batches, scheduler: str | None, local_cluster: int | None):
    """Yield results batch by batch from Dask distributed (an address, or a LocalCluster)."""
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=local_cluster, processes=True, threads_per_worker=1,
                               dashboard_address=None)
    client = Client(scheduler or cluster)
    try:
        futures = client.map(run_batch, batches, pure=False)
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run(clips_dir, checkpoints: Sequence, out_dir, transcripts=None, workers: int | None = None,
        scheduler: str | None = None, local_cluster: int | None = None, batch_size: int = 4,
        retry_errors: bool = False, progress: bool = True, report: bool = True,
        conditions: Sequence[str] | str | None = None) -> dict:
    """Analyse every unit not yet done, then assemble the tables (and the HTML report).
    ``conditions``: pitch conditions run on every unit beside the true F0 (e.g.
    "true,shuffled,constant:100"; see workbench.batch_conditions).
    Returns {"done": units analysed now, "skipped": already done, "errors": failed now,
    "seconds": wall time, "tables": {...}}."""
    from tqdm.auto import tqdm

    if not checkpoints:
        raise EchoError("no checkpoint given; accepted: one or more --checkpoint PATH")
    if scheduler and local_cluster:
        raise EchoError("give --scheduler or --local-cluster, not both")
    out_dir = Path(out_dir)
    (out_dir / PARTS).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    todo, skipped = plan(clips_dir, checkpoints, out_dir, transcripts, retry_errors,
                         parse_conditions(conditions))
    batches = _batches(todo, max(1, int(batch_size)))
    if scheduler or local_cluster:
        stream = _dask(batches, scheduler, local_cluster)
    else:
        stream = _local(batches, workers or os.cpu_count() or 1)
    done = failed = 0
    try:
        with tqdm(total=len(todo), unit="unit", disable=not progress or not todo) as bar:
            for results in stream if batches else ():
                for result in results:
                    write_result(out_dir / PARTS, result)
                    done += 1
                    failed += "error" in result
                    bar.update(1)
    finally:  # also on Ctrl-C: the tables then hold every unit finished so far
        tables = assemble(out_dir)
    if report:
        from workbench.batch_report import write_report

        write_report(out_dir, tables)
    return dict(done=done, skipped=skipped, errors=failed,
                seconds=time.perf_counter() - start, tables=tables)


def load_results(results_dir) -> dict[str, pd.DataFrame]:
    """The tables of a results folder (assembled from parts/ when parts are newer)."""
    results_dir = Path(results_dir)
    if not (results_dir / PARTS).is_dir() and not (results_dir / "results.parquet").is_file():
        raise EchoError(f"{results_dir} is not a batch results folder (no parts/ or "
                        "results.parquet); accepted: a folder written by python -m workbench.batch")
    parts = list((results_dir / PARTS).glob("*.parquet")) if (results_dir / PARTS).is_dir() else []
    final = results_dir / "results.parquet"
    stale = not final.is_file() or any(p.stat().st_mtime > final.stat().st_mtime for p in parts)
    if stale and parts:
        return assemble(results_dir)
    tables = {name: pd.read_parquet(results_dir / f"{name}.parquet") for name in TABLES
              if (results_dir / f"{name}.parquet").is_file()}
    if "head_scores_summary" not in tables and "head_scores" in tables:  # an older folder
        tables["head_scores_summary"] = summarise_head_scores(tables["head_scores"])
    return tables


RESULTS_ENV = "ECHO_RESULTS_DIR"  # the one folder the app may read results from
DEFAULT_RESULTS = Path(__file__).resolve().parents[1] / "results"


def results_root() -> Path:
    """The results root the app lists: $ECHO_RESULTS_DIR, else <repo>/results."""
    return Path(os.environ.get(RESULTS_ENV) or DEFAULT_RESULTS).resolve()


def is_results_folder(path) -> bool:
    path = Path(path)
    return (path / PARTS).is_dir() or (path / "results.parquet").is_file()


def list_results(root=None) -> list[str]:
    """Names of the root's direct sub-folders holding batch output (sorted). Folders whose real
    path leaves the root (symlinks out) are not listed: the app reads nothing outside it."""
    root = Path(root).resolve() if root is not None else results_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and p.resolve().parent == root and is_results_folder(p))


def results_folder(name, root=None) -> Path:
    """The folder of a listed results name; anything else (paths, .., unlisted) is refused, so
    a caller of the app's API cannot make it read an arbitrary server path."""
    root = Path(root).resolve() if root is not None else results_root()
    listed = list_results(root)
    if not isinstance(name, str) or name not in listed:
        raise EchoError(f"{name!r} is not a results folder of {root}; accepted: one of "
                        f"{listed or 'none yet (run python -m workbench.batch --out ...)'}")
    return root / name


def summary_figures(results_dir) -> list:
    """Plotly figures of a results folder (see workbench.batch_report.figures_from_tables)."""
    from workbench.batch_report import figures_from_tables

    return figures_from_tables(load_results(results_dir))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.batch", description=__doc__
                                     .split("\n")[0])
    parser.add_argument("clips_dir", help="folder of wav/flac/ogg/mp3 clips (recursive)")
    parser.add_argument("--checkpoint", action="append", required=True,
                        help="checkpoint folder or file; repeat for several")
    parser.add_argument("--out", required=True, help="results folder (resumable)")
    parser.add_argument("--transcripts", help="CSV with columns path,text (else <clip>.txt)")
    parser.add_argument("--workers", type=int, help="local processes (default: all cores)")
    parser.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    parser.add_argument("--local-cluster", type=int, metavar="N",
                        help="run on a Dask LocalCluster of N worker processes")
    parser.add_argument("--batch-size", type=int, default=4, help="units per task")
    parser.add_argument("--retry-errors", action="store_true", help="rerun failed units")
    parser.add_argument("--no-report", action="store_true", help="skip report.html")
    parser.add_argument("--conditions", help="pitch conditions beside the true F0, e.g. "
                        "true,shuffled,constant:100,semitones:4,audio:3 (adds the conditions "
                        "and conditions_summary tables)")
    args = parser.parse_args(argv)
    try:
        summary = run(args.clips_dir, args.checkpoint, args.out, args.transcripts,
                      args.workers, args.scheduler, args.local_cluster, args.batch_size,
                      args.retry_errors, report=not args.no_report,
                      conditions=args.conditions)
    except EchoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{summary['done']} unit(s) analysed ({summary['errors']} failed), "
          f"{summary['skipped']} already done, {summary['seconds']:.1f} s; tables in {args.out}")
    return 0


if __name__ == "__main__":
    # run the importable module's main, not __main__'s: workers must unpickle run_batch by name
    from workbench.batch import main as _main

    sys.exit(_main())
