"""PNG plots (matplotlib, Agg backend) with fixed sizes and no metadata, so the
same data gives the same bytes."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cai_bench.escape import plot_text  # noqa: E402

_DPI = 100
_META = {"Software": None}
_MPL = tuple(int(x) for x in matplotlib.__version__.split(".")[:2])
_HORIZONTAL = {"orientation": "horizontal"} if _MPL >= (3, 10) else {"vert": False}
_TICK_LABELS = "tick_labels" if _MPL >= (3, 9) else "labels"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata=_META)
    plt.close(fig)
    return buf.getvalue()


def _style() -> dict:
    return {"font.size": 9, "axes.titlesize": 10, "svg.hashsalt": "cai-bench"}


def labels_width(labels: list[str]) -> float:
    """Rough width (inches) of the longest y tick label at font size 9."""
    return 0.075 * max((len(str(x)) for x in labels), default=4) + 0.15


def _grid(nrows: int, ncols: int, label_in: float) -> dict:
    """Margins computed from the label width instead of tight_layout (which costs
    more than drawing the figure)."""
    width, height = 4.0 * ncols, 2.6 * nrows
    panel = (width - 0.2 - label_in) / ncols  # inches per panel incl. its label gutter
    return {"left": (label_in + 0.1) / width, "right": 1 - 0.1 / width,
            "top": 1 - 0.6 / height, "bottom": 0.35 / height,
            "wspace": min(1.5, label_in / max(panel - label_in, 0.5) + 0.05), "hspace": 0.5}


def _panels(keys: list[str], labels: list[str]):  # noqa: ANN202 - (Figure, axes array)
    """One panel per metric key, up to 3 a row, margins fitted to the checkpoint labels."""
    ncols = min(3, max(1, len(keys)))
    nrows = max(1, -(-len(keys) // ncols))
    return plt.subplots(nrows, ncols, figsize=(4 * ncols, 2.6 * nrows), squeeze=False,
                        gridspec_kw=_grid(nrows, ncols, labels_width(labels)))


def _finish(fig, axes, keys: list[str], title: str) -> bytes:  # noqa: ANN001
    """Checkpoints top-down, each panel titled by its metric, unused panels blank; the PNG."""
    for ax, key in zip(axes.flat, keys):
        ax.invert_yaxis()
        ax.set_title(plot_text(key))
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle(plot_text(title))
    return _png(fig)


def metric_means(board: pd.DataFrame, group: str) -> bytes:
    """One panel per metric: each checkpoint's mean with its 95% CI, for one culture."""
    part = board[board["group"] == group]
    keys = [c for c in board.columns
            if not c.endswith((".lo", ".hi", ".n")) and "." in c and part[c].notna().any()]
    with plt.rc_context(_style()):
        labels = list(part["label"])
        fig, axes = _panels(keys, labels)
        for ax, key in zip(axes.flat, keys):
            means = part[key].to_numpy(dtype=float)
            err = np.vstack([means - part[f"{key}.lo"].to_numpy(dtype=float),
                             part[f"{key}.hi"].to_numpy(dtype=float) - means])
            y = np.arange(len(labels))
            ax.barh(y, np.nan_to_num(means), xerr=np.nan_to_num(err), color="#4c72b0", capsize=3)
            ax.set_yticks(y, [plot_text(lab) for lab in labels])
        return _finish(fig, axes, keys, f"Metric means with 95% bootstrap CI: {group}")


def heatmap(matrix: pd.DataFrame) -> bytes:
    """Checkpoint x culture composite heatmap."""
    with plt.rc_context(_style()):
        fig, ax = plt.subplots(figsize=(max(4, 1.4 * matrix.shape[1] + 2.5), max(2.5, 0.5 * matrix.shape[0] + 1.5)))
        data = matrix.to_numpy(dtype=float)
        im = ax.imshow(np.ma.masked_invalid(data), cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(matrix.shape[1]), [plot_text(c) for c in matrix.columns])
        ax.set_yticks(range(matrix.shape[0]), [plot_text(i) for i in matrix.index])
        for (i, j), v in np.ndenumerate(data):
            if not np.isnan(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="white" if v < 0.6 else "black")
        fig.colorbar(im, ax=ax, label="composite (0 worst, 1 best)")
        ax.set_title("Composite by checkpoint and culture")
        fig.tight_layout()
        return _png(fig)


def distributions(df: pd.DataFrame, group: str) -> bytes:
    """Per metric, each checkpoint's score distribution for one culture: box = quartiles,
    whiskers = 5th..95th percentile (outliers not drawn, so big stores plot fast)."""
    part = df[(df["culture"] == group) & (df["status"] == "ok")]
    keys = sorted((part["scorer_id"] + "." + part["metric"]).unique())
    with plt.rc_context(_style()):
        labels = sorted(part["label"].unique())
        fig, axes = _panels(keys, labels)
        keyed = part.assign(key=part["scorer_id"] + "." + part["metric"])
        for ax, key in zip(axes.flat, keys):
            sub = keyed[keyed["key"] == key]
            data = [sub.loc[sub["label"] == lab, "value"].to_numpy(dtype=float) for lab in labels]
            ax.boxplot(data, showfliers=False, whis=(5, 95), **_HORIZONTAL,
                       **{_TICK_LABELS: [plot_text(lab) for lab in labels]})
        return _finish(fig, axes, keys, f"Score distributions: {group}")


def training_curves(curves: dict[str, list[dict]]) -> bytes | None:
    """Trainer-log curves of a pipeline: one panel per (stage, key) that was logged,
    e.g. SFT loss, DPO loss, DPO reward margins and accuracies; None when nothing was logged."""
    panels = [(stage, key) for stage, rows in curves.items()
              for key in ("loss", "rewards/margins", "rewards/accuracies")
              if any(key in r for r in rows)]
    if not panels:
        return None
    with plt.rc_context(_style()):
        ncols = min(2, len(panels))
        nrows = -(-len(panels) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 2.6 * nrows), squeeze=False,
                                 gridspec_kw={"hspace": 0.6, "wspace": 0.3, "top": 1 - 0.5 / (2.6 * nrows),
                                              "bottom": 0.45 / (2.6 * nrows), "left": 0.12 / ncols * 2 / 2,
                                              "right": 0.97})
        for ax, (stage, key) in zip(axes.flat, panels):
            pts = [(r["step"], r[key]) for r in curves[stage] if key in r and r.get("step") is not None]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3)
            ax.set_title(plot_text(f"{stage.upper()} {key}"))
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        return _png(fig)


def axis_effects(points: list[dict], axis: str) -> bytes:
    """One panel per metric: DPO - base with its 95% CI at each value of an experiment
    axis, one series per setting of the other axes. `points`: {metric, value, series,
    delta, lo, hi}, in the axis's order."""
    keys = sorted({p["metric"] for p in points})
    values = list(dict.fromkeys(p["value"] for p in points))
    series = list(dict.fromkeys(p["series"] for p in points))
    with plt.rc_context(_style()):
        ncols = min(3, max(1, len(keys)))
        nrows = max(1, -(-len(keys) // ncols))
        fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 2.8 * nrows), squeeze=False,
                                 gridspec_kw={"hspace": 0.7, "wspace": 0.35, "top": 1 - 0.7 / (2.8 * nrows),
                                              "bottom": 0.6 / (2.8 * nrows), "left": 0.1, "right": 0.97})
        width = 0.6 / max(1, len(series))
        for ax, key in zip(axes.flat, keys):
            for k, s in enumerate(series):
                pts = [p for p in points if p["metric"] == key and p["series"] == s]
                x = np.array([values.index(p["value"]) for p in pts], dtype=float) + (k - (len(series) - 1) / 2) * width
                d = np.array([p["delta"] for p in pts], dtype=float)
                err = np.vstack([d - np.array([p["lo"] for p in pts], dtype=float),
                                 np.array([p["hi"] for p in pts], dtype=float) - d])
                ax.errorbar(x, d, yerr=np.nan_to_num(err), fmt="o", capsize=3, label=plot_text(s) if s else None)
            ax.axhline(0, color="#888", linewidth=0.8)
            ax.set_xticks(range(len(values)), [plot_text(v) for v in values])
            ax.set_xlim(-0.6, len(values) - 0.4)
            ax.set_title(plot_text(key))
            ax.set_ylabel("DPO - base")
        for ax in list(axes.flat)[len(keys):]:
            ax.axis("off")
        if any(series):
            axes.flat[0].legend(fontsize=7)
        fig.suptitle(plot_text(f"DPO - base (95% CI) by {axis}"))
        return _png(fig)


def transfer_heatmap(rows: list[str], cols: list[str], cells: dict[str, list[list[dict | None]]]) -> bytes:
    """Trained-on x evaluated-on: DPO - base per metric panel; * marks a corrected p < 0.05."""
    keys = list(cells)
    with plt.rc_context(_style()):
        ncols = min(2, max(1, len(keys)))
        nrows = max(1, -(-len(keys) // ncols))
        w = max(3.5, 1.3 * len(cols) + labels_width(rows) + 1.2)
        fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, max(2.4, 0.55 * len(rows) + 1.6) * nrows),
                                 squeeze=False)
        for ax, key in zip(axes.flat, keys):
            data = np.array([[c["delta"] if c and c["delta"] is not None else np.nan for c in row]
                             for row in cells[key]], dtype=float)
            span = float(np.nanmax(np.abs(data))) if np.isfinite(data).any() else 1.0
            im = ax.imshow(np.ma.masked_invalid(data), cmap="RdBu", vmin=-(span or 1.0), vmax=span or 1.0,
                           aspect="auto")
            ax.set_xticks(range(len(cols)), [plot_text(c) for c in cols])
            ax.set_yticks(range(len(rows)), [plot_text(r) for r in rows])
            for (i, j), v in np.ndenumerate(data):
                c = cells[key][i][j]
                if c is not None and not np.isnan(v):
                    star = "*" if c["verdict"] in ("improved", "regressed") else ""
                    ax.text(j, i, f"{v:+.3f}{star}", ha="center", va="center",
                            color="white" if abs(v) > 0.6 * (span or 1.0) else "black")
            fig.colorbar(im, ax=ax, label="DPO - base")
            ax.set_title(plot_text(key))
            ax.set_xlabel("evaluated on")
            ax.set_ylabel("trained on")
        for ax in list(axes.flat)[len(keys):]:
            ax.axis("off")
        fig.tight_layout()
        return _png(fig)
