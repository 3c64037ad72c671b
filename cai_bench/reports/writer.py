"""`write_report`: store -> `<out>/report/` files, byte-identical for the same store."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cai_bench.bootstrap_settings import N_BOOT
from cai_bench.errors import UserError
from cai_bench.escape import csv_frame
from cai_bench.paths import atomic_write_bytes, atomic_write_text
from cai_bench.reports.build import ReportData, build, slug
from cai_bench.results import load_results_with_extras, redact_url
from cai_bench.results.load import LateDeclarations

FORMATS = ("html", "md", "csv", "parquet")
DEFAULT_FORMATS = ("html", "md", "csv")


def _csv(frame: pd.DataFrame) -> str:
    return csv_frame(frame).to_csv(index=False, lineterminator="\n", float_format="%.6g")


def _parquet(frame: pd.DataFrame) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def combined_board(data: ReportData) -> pd.DataFrame:
    """Both aggregation levels in one table: `level` is culture or task, `group`
    the culture or task id, `culture` the culture either way."""
    cult = data.board.assign(level="culture", culture=data.board["group"])
    task = data.task_board.assign(level="task")
    frame = pd.concat([cult, task], ignore_index=True)
    first = ["level", "group", "culture"]
    return frame[first + [c for c in frame.columns if c not in first]]


def check_formats(formats: Sequence[str]) -> list[str]:
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise UserError(f"--format: unknown format(s) {', '.join(bad)}; choose from {', '.join(FORMATS)}")
    return list(dict.fromkeys(formats))


def _clean(report: Path, keep: set[str]) -> None:
    """Drop per-culture files of earlier reports that this one does not write."""
    for pattern in ("leaderboard_*.csv", "tasks_leaderboard.csv", "validity.csv", "agreement.csv", "plots/*.png",
                    "samples.html", "pipeline.md", "pipeline.json", "training_curves*.png", "experiment.md",
                    "experiment.json", "comparisons.csv"):
        for p in report.glob(pattern):
            if str(p.relative_to(report)) not in keep:
                p.unlink()


def write_files(data: ReportData, out_dir: Path, formats: Sequence[str], *, seed: int, n_boot: int,
                combined_csv: bool = True) -> Path:
    """`<out_dir>/report/`; with `combined_csv`, also `<out_dir>/leaderboard.csv` (both levels)."""
    report = Path(out_dir) / "report"
    report.mkdir(parents=True, exist_ok=True)
    written: set[str] = set()

    def put(name: str, payload: str | bytes) -> None:
        path = report / name
        (atomic_write_text if isinstance(payload, str) else atomic_write_bytes)(path, payload)
        written.add(name)

    if "csv" in formats:
        for c in data.cultures:
            put(f"leaderboard_{slug(c)}.csv", _csv(data.board[data.board["group"] == c]))
        put("tasks_leaderboard.csv", _csv(data.task_board))
        from cai_bench.reports.validity import validity_csv_frame

        put("validity.csv", _csv(validity_csv_frame(data.validity)))
        if not data.agreement.empty:
            put("agreement.csv", _csv(data.agreement))
    if combined_csv:
        atomic_write_text(Path(out_dir) / "leaderboard.csv", _csv(combined_board(data)))
    if "md" in formats:
        from cai_bench.reports.markdown import render_markdown

        put("leaderboard.md", render_markdown(data))
    for name, png in sorted(data.plots.items()):
        put(f"plots/{name}", png)
    if "html" in formats:
        from cai_bench.reports.html import render_html

        from cai_bench.reports.html import render_samples

        put("index.html", render_html(data, seed=seed, n_boot=n_boot))
        put("samples.html", render_samples(data))
    if data.loops:
        import json

        from cai_bench.reports.markdown import render_loop_markdown

        for name, png in sorted(data.loop_plots.items()):
            put(name, png)
        if "md" in formats:
            put("pipeline.md", render_loop_markdown(data.loops))
        loops = [lr.as_json() for lr in data.loops]
        put("pipeline.json", json.dumps(loops[0] if len(loops) == 1 else {"loops": loops}, indent=2,
                                        default=str) + "\n")
    if data.experiments:
        _experiment_files(data, formats, put)
    put("samples.parquet", _parquet(data.samples))
    _clean(report, written)
    return report


def _experiment_files(data: ReportData, formats: Sequence[str], put) -> None:  # noqa: ANN001 - put(name, payload)
    """experiment.json, comparisons.csv (csv), experiment.md (md) and each experiment's plots."""
    import json

    from cai_bench.reports.experiment import comparisons_frame, experiment_plot_names

    several = len(data.experiments) > 1
    names = [experiment_plot_names(rep, several) for rep in data.experiments]
    for name, png in sorted(data.experiment_plots.items()):
        put(f"plots/{name}", png)
    exps = [rep.as_json() for rep in data.experiments]
    put("experiment.json", json.dumps(exps[0] if len(exps) == 1 else {"experiments": exps}, indent=2,
                                      ensure_ascii=False, allow_nan=False, default=str) + "\n")
    if "csv" in formats:
        put("comparisons.csv", _csv(comparisons_frame(data.experiments)))
    if "md" in formats:
        from cai_bench.reports.markdown import render_experiment_markdown

        put("experiment.md", render_experiment_markdown(data.experiments, names, data.experiment_plots))


def prepare(store_url: str, *, baseline: str | None = None, formats: Sequence[str] = DEFAULT_FORMATS,
            seed: int = 0, n_boot: int = N_BOOT, late: LateDeclarations | None = None,
            correction: str | None = None, embed: Callable[[Sequence[str]], np.ndarray] | None = None) -> ReportData:
    """Load the store and compute everything the report shows (plots only for html).
    `correction` (holm, bh) overrides the method each experiment recorded; `embed`
    (`cai_bench.embeddings.embed`) links experiment answers to training prompts.

    Raises `UserError` when the store is missing or holds no scores."""
    formats = check_formats(formats)
    df, extras = load_results_with_extras(store_url, late)
    if df.empty:
        raise UserError(f"results store {redact_url(store_url)} holds no scores yet: nothing to report "
                        "(run `cai-bench run` first, or point --store at a store with results)")
    from cai_bench.reports.agreement import load_panel_rows
    from cai_bench.reports.validity import load_culture_validity, load_validity
    from cai_bench.results.experiments import load_experiments
    from cai_bench.results.loops import load_loops

    return build(df, extras, baseline=baseline, seed=seed, n_boot=n_boot, with_plots="html" in formats,
                 validity=load_validity(store_url, df), loops=load_loops(store_url),
                 experiments=load_experiments(store_url), correction=correction, embed=embed,
                 panel_rows=load_panel_rows(store_url, df), culture_validity=load_culture_validity(store_url, df))


def write_report(store_url: str, out_dir: Path, *, baseline: str | None = None,
                 formats: Sequence[str] = DEFAULT_FORMATS, seed: int = 0, n_boot: int = N_BOOT,
                 late: LateDeclarations | None = None, correction: str | None = None,
                 embed: Callable[[Sequence[str]], np.ndarray] | None = None) -> Path:
    """Rebuild `<out_dir>/report/` (and `<out_dir>/leaderboard.csv`) from the store alone."""
    formats = check_formats(formats)
    data = prepare(store_url, baseline=baseline, formats=formats, seed=seed, n_boot=n_boot, late=late,
                   correction=correction, embed=embed)
    return write_files(data, out_dir, formats, seed=seed, n_boot=n_boot)
