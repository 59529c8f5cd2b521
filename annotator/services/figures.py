"""The paper's two figures drawn from the data: the distribution of semantic types per layer
(stacked bars of the share of answers in each category) and the histogram of object labels among
detector units. Written as PNG and SVG for papers, and served by the dashboard. Detectors are the
units aggregation stored as such: to draw with another threshold, aggregate again with it."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

from annotator import selectors
from annotator.models import Category

COLOURS = {
    "scene": "#4c72b0",
    "object": "#dd8452",
    "region": "#55a868",
    "part": "#c44e52",
    "texture": "#8172b3",
    "color": "#937860",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def types_figure(network: str, fmt: str = "png") -> bytes:
    plt = _pyplot()
    rows = selectors.layer_summaries(network)
    fig, ax = plt.subplots(figsize=(max(5.0, 2.6 + 1.1 * len(rows)), 3.6), dpi=120)
    bottom = [0.0] * len(rows)
    for value, label in Category.choices:
        shares = [row.type_shares.get(value, 0.0) for row in rows]
        ax.bar([row.layer for row in rows], shares, bottom=bottom, label=label, color=COLOURS[value], width=0.6)
        bottom = [b + s for b, s in zip(bottom, shares, strict=True)]
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of answers")
    ax.set_title(f"{network}: semantic types per layer")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return _save(plt, fig, fmt)


def objects_figure(network: str, fmt: str = "png", layer: str | None = None) -> bytes:
    plt = _pyplot()
    counts = Counter(selectors.object_detector_labels(network, layer))
    top = counts.most_common(30)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.32 * len(top) + 1.5), 3.6), dpi=120)
    ax.bar([name for name, _ in top], [n for _, n in top], color=COLOURS["object"])
    ax.set_ylabel("detector units")
    ax.set_title(f"{network}{'/' + layer if layer else ''}: object detectors by label")
    ax.tick_params(axis="x", labelrotation=75, labelsize=7)
    return _save(plt, fig, fmt)


def _save(plt, fig, fmt: str) -> bytes:
    if fmt not in ("png", "svg"):
        raise ValueError(f"Unknown figure format {fmt!r}: use png or svg.")
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format=fmt)
    plt.close(fig)
    return buffer.getvalue()


def figures_write(network: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in (("types", types_figure), ("objects", objects_figure)):
        for fmt in ("png", "svg"):
            path = out / f"{network}_{name}.{fmt}"
            path.write_bytes(draw(network, fmt))
            written.append(path)
    return written
