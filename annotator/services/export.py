"""Unit records for papers and other tools: JSON (with lists) or CSV (one row a unit)."""
from __future__ import annotations

import csv
import io
import json

from django.core.exceptions import ObjectDoesNotExist

from annotator.selectors import units_for_export

CSV_FIELDS = ["network", "layer", "unit", "rf_theoretical_px", "rf_empirical_px", "top_image", "top_score",
              "label", "category", "precision", "status"]


def unit_records(network: str | None = None, layer: str | None = None) -> list[dict]:
    records = []
    for unit in units_for_export(network, layer):
        try:
            rf = unit.receptive_field
        except ObjectDoesNotExist:
            rf = None
        try:
            label = unit.label
        except ObjectDoesNotExist:
            label = None
        records.append({
            "network": unit.layer.network.name,
            "layer": unit.layer.name,
            "unit": unit.index,
            "rf_theoretical_px": unit.layer.rf_theoretical_px,
            "rf_empirical_px": round(rf.empirical_px, 2) if rf else None,
            "top_images": [{"image": t.image.path, "score": t.score} for t in unit.top_images.all()],
            "label": label.label if label and label.label else None,
            "category": label.category if label and label.category else None,
            "precision": label.precision if label else None,
            "status": label.status if label else "pending",
            "answers": [],
        })
    return records


def render(records: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(records, indent=1) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for record in records:
            top = record["top_images"][0] if record["top_images"] else {"image": "", "score": ""}
            writer.writerow({**record, "top_image": top["image"], "top_score": top["score"]})
        return out.getvalue()
    raise ValueError(f"Unknown export format {fmt!r}: use json or csv.")
