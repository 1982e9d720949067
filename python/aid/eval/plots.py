"""Figures for the benchmarks, drawn with matplotlib's object API on the Agg canvas (no pyplot, no
display, no global backend switch): curves of a metric against a cost, and tables of images."""
from __future__ import annotations

import math
import os

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from aid.core.checkpoint import atomic_write


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# matplotlib's ten default colours, then twelve more: the benchmark has eleven methods and more variants.
PALETTE = [f"C{i}" for i in range(10)] + ["black", "gold", "lime", "navy", "magenta", "teal", "sienna", "olive",
                                          "crimson", "darkviolet", "deepskyblue", "darkseagreen"]


def curve_styles(curves: list) -> dict:
    """A colour and a marker per curve, in order; the colours differ for up to len(PALETTE) curves."""
    return {c: dict(color=PALETTE[i % len(PALETTE)], marker="os^vDPX*"[i % 8]) for i, c in enumerate(curves)}


def curve_panels(records: list[dict], path: str, *, x: str, ys: list[tuple[str, str]], panel: str, curve: str,
                 xlabel: str, title: str | None = None, highlight: str | None = None, logx: bool = True) -> None:
    """A grid of line plots saved as PNG: one column per distinct record[panel], one row per
    (key, label) in ys, one curve per distinct record[curve] (both in order of first appearance; a
    curve has the same colour and marker in every panel), points sorted by record[x]. A point whose x or y is
    not a finite number (e.g. a metric reported as "skipped ...") is left out; an empty panel says
    so. Records with a true record[highlight] get a large hollow marker (e.g. a method's default)."""
    panels = list(dict.fromkeys(r[panel] for r in records))
    curves = list(dict.fromkeys(r[curve] for r in records))
    styles = curve_styles(curves)
    fig = Figure(figsize=(4.2 * len(panels), 3.2 * len(ys)), layout="constrained")
    axes = fig.subplots(len(ys), len(panels), squeeze=False)
    for col, p in enumerate(panels):
        for row, (key, label) in enumerate(ys):
            ax = axes[row][col]
            drawn = False
            for c in curves:
                pts = sorted((r[x], r[key], bool(highlight and r.get(highlight))) for r in records
                             if r[panel] == p and r[curve] == c and _finite(r[x]) and _finite(r[key]))
                if not pts:
                    continue
                drawn = True
                ax.plot([q[0] for q in pts], [q[1] for q in pts], "-", ms=4, label=c, **styles[c])
                ax.plot([q[0] for q in pts if q[2]], [q[1] for q in pts if q[2]], "o", ms=11, mfc="none",
                        color=styles[c]["color"])
            if not drawn:
                ax.text(0.5, 0.5, f"no {label}", ha="center", va="center", transform=ax.transAxes, color="gray")
            elif logx:
                _log_x(ax)
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(str(p) if row == 0 else "")
            ax.set_xlabel(xlabel if row == len(ys) - 1 else "")
            ax.set_ylabel(label if col == 0 else "")
    handles = {h.get_label(): h for ax in axes.flat for h in ax.get_lines() if not h.get_label().startswith("_")}
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="outside right center")
    if title:
        fig.suptitle(title)
    _save(fig, path)


def _log_x(ax) -> None:
    """A log x axis labelled 1, 2, 5, 10, 20, … in plain numbers (no 4×10⁰ minor labels)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def image_table(images: list[list[torch.Tensor]], path: str, *, col_titles: list[str],
                row_titles: list[str] | None = None, cell_inches: float = 1.1) -> None:
    """A table of images saved as PNG: images[r][c] is [C, H, W] in [-1, 1] with C = 1 (shown in gray,
    −1 black) or C = 3 (RGB); titles above the first row and left of each row."""
    rows, cols = len(images), len(col_titles)
    if any(len(r) != cols for r in images):
        raise ValueError(f"image_table: every row needs {cols} images (one per column title)")
    fig = Figure(figsize=(cell_inches * cols + (1.2 if row_titles else 0), cell_inches * rows + 0.5),
                 layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for r, row in enumerate(images):
        for c, img in enumerate(row):
            ax = axes[r][c]
            a = img.detach().float().cpu()
            if a.shape[0] == 1:
                ax.imshow(a[0].numpy(), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
            else:
                ax.imshow(((a.permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(col_titles[c], fontsize=8)
            if row_titles and c == 0:
                ax.set_ylabel(row_titles[r], fontsize=8)
    _save(fig, path)


def _save(fig: Figure, path: str) -> None:
    """Written atomically (no half image after a kill or a full disk), in the format of path's suffix."""
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format=fmt))
