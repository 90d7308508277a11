"""PNG trend plot of CI durations per run, baseline vs head (matplotlib, Agg, lazy import)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from contexten.analysis.executions import median


def plot_trend(
    path: Path,
    *,
    title: str,
    baseline_label: str,
    baseline: Sequence[tuple[datetime, float]],
    head_label: str,
    head: Sequence[tuple[datetime, float]],
    threshold_percent: float | None = None,
) -> Path:
    """Run duration (minutes) per run over time, both branches, with their medians."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    try:
        for label, points, colour in (
            (baseline_label, baseline, "#1f77b4"),
            (head_label, head, "#d62728"),
        ):
            if not points:
                continue
            xs: list[Any] = [p[0] for p in points]  # matplotlib plots datetimes
            ys = [p[1] / 60.0 for p in points]
            ax.plot(
                xs,
                ys,
                marker="o",
                markersize=3,
                linewidth=1,
                color=colour,
                label=label,
            )
            level = median(ys)
            ax.axhline(level, color=colour, linestyle="--", linewidth=1, alpha=0.7)
            ax.annotate(
                f"median {level:.1f} min",
                xy=(xs[-1], level),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=8,
                color=colour,
            )
        if threshold_percent is not None and baseline:
            limit = median([p[1] / 60.0 for p in baseline]) * (1 + threshold_percent / 100.0)
            ax.axhline(limit, color="grey", linestyle=":", linewidth=1)
            ax.annotate(
                f"alert threshold +{threshold_percent:g}%",
                xy=(0.01, limit),
                xycoords=("axes fraction", "data"),
                xytext=(0, 3),
                textcoords="offset points",
                fontsize=8,
                color="grey",
            )
        ax.set_title(title)
        ax.set_ylabel("run time (min, without queue)")
        ax.grid(True, alpha=0.3)
        if baseline or head:
            ax.legend(loc="upper left")
        fig.autofmt_xdate()
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
