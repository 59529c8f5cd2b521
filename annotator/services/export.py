"""Unit records for papers and other tools: JSON (with lists), CSV (one row a unit) or a Network
Dissection style tally.csv (labelled units, best first)."""

from __future__ import annotations

import csv
import io
import json

from django.core.exceptions import ObjectDoesNotExist

from annotator.models import UnitEvaluation, UnitLabel
from annotator.selectors import units_for_export
from annotator.task_kinds import task_for_answer
from annotator.task_kinds.presence_scores import HOLDS_ONLY_AT_TOP

CSV_FIELDS = [
    "network",
    "layer",
    "unit",
    "rf_theoretical_px",
    "rf_empirical_px",
    "top_image",
    "top_score",
    "label",
    "category",
    "precision",
    "status",
    "answers_counted",
    "rho",  # the newest presence campaign's evaluation beyond the top images
    "rho_low",
    "rho_high",
    "f1",
    "iou",
    "base_rate",
    "holds_only_at_top",
]
EVALUATION_FIELDS = (
    "rho",
    "rho_low",
    "rho_high",
    "precision",
    "recall",
    "f1",
    "iou",
    "base_rate",
    "paper_precision",
    "images",
    "ratings",
    "flip",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula


def cell_safe(value: object) -> object:
    """A text cell a spreadsheet shows as text: one that would start a formula (a label typed as
    `=HYPERLINK(...)`, say) gets a leading apostrophe, as OWASP's CSV-injection advice says."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _row(fields: dict) -> dict:
    return {name: cell_safe(value) for name, value in fields.items()}


def _answer(answer) -> dict:
    """An answer as exported: the task's fields, and whether it counts (its platform confirmed it, the
    HIT wanted it, no reviewer rejected it) and, where not, why."""
    return {
        **task_for_answer(answer).export_answer(answer),
        "counts": answer.counts,
        "confirmation": answer.confirmation,
        "not_counted_because": answer.excluded_because,
    }


def unit_records(network: str | None = None, layer: str | None = None, all_answers: bool = False) -> list[dict]:
    """The units' records; their answers are those that count, unless `all_answers` (then every stored
    answer, each marked)."""
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
        records.append(
            {
                "network": unit.layer.network.name,
                "layer": unit.layer.name,
                "unit": unit.index,
                "rf_theoretical_px": unit.layer.rf_theoretical_px,
                "rf_empirical_px": round(rf.empirical_px, 2) if rf else None,
                "top_images": [{"image": t.image.path, "score": t.score} for t in unit.top_images.all()],
                "label": (label.final_label or None) if label else None,
                "category": (label.final_category or None) if label else None,
                "precision": round(label.precision, 4) if label and label.precision is not None else None,
                "status": label.final_status if label else "pending",
                "label_agreement": label.label_agreement if label else None,
                "category_agreement": label.category_agreement if label else None,
                "answers": [_answer(a) for a in unit.answers.all() if all_answers or a.counts],
                "answers_counted": sum(a.counts for a in unit.answers.all()),
                "beyond_top": [_evaluation(e) for e in unit.evaluations.all()],
                "automatic": [
                    {
                        "source": a.source,
                        "label": a.label,
                        "category": a.source_category or a.category,
                        "iou": a.score,
                        "threshold": a.threshold,
                        "detector": a.detector,
                    }
                    for a in unit.auto_labels.all()
                ],
            }
        )
    return records


def _evaluation(row: UnitEvaluation) -> dict:
    """One presence campaign's scores of the unit's label beyond its top images."""
    values = {name: getattr(row, name) for name in EVALUATION_FIELDS}
    rounded = {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}
    return {"campaign": row.campaign.name, "label": row.label, **rounded, "flags": list(row.flags)}


def render(records: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(records, indent=1) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for record in records:
            top = record["top_images"][0] if record["top_images"] else {"image": "", "score": ""}
            latest = record["beyond_top"][-1] if record["beyond_top"] else {}
            beyond = {name: latest.get(name) for name in ("rho", "rho_low", "rho_high", "f1", "iou", "base_rate")}
            if latest:
                beyond["holds_only_at_top"] = HOLDS_ONLY_AT_TOP in latest["flags"]
            writer.writerow(_row({**record, "top_image": top["image"], "top_score": top["score"], **beyond}))
        return out.getvalue()
    if fmt == "tally":
        return _tally(records)
    if fmt == "table":
        return _table(records)
    raise ValueError(f"Unknown export format {fmt!r}: use json, csv, tally or table.")


TALLY_FIELDS = ["unit", "category", "label", "score", "layer", "status", "answers", "category_agreement"]


def _tally(records: list[dict]) -> str:
    """Network Dissection's tally.csv: `unit` 1-based, `score` our precision, best units first;
    the extra columns follow NetDissect's four."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=TALLY_FIELDS, lineterminator="\n")
    writer.writeheader()
    labelled = [r for r in records if r["label"]]
    for r in sorted(labelled, key=lambda r: (-(r["precision"] or 0), r["layer"], r["unit"])):
        writer.writerow(
            _row(
                {
                    "unit": r["unit"] + 1,
                    "category": r["category"] or "",
                    "label": r["label"],
                    "score": r["precision"],
                    "layer": r["layer"],
                    "status": r["status"],
                    "answers": r["answers_counted"],
                    "category_agreement": r["category_agreement"],
                }
            )
        )
    return out.getvalue()


def _table(records: list[dict]) -> str:
    """A plain-text table for the terminal: one line a unit, its status in words (the files keep the
    values scripts read)."""
    lines = [
        f"{'layer':8s} {'unit':>4s}  {'label':24s} {'category':9s} {'precision':>9s}  {'agree':>5s}  "
        f"{'rho beyond top':>19s}  status"
    ]
    for r in records:
        precision = "" if r["precision"] is None else f"{r['precision']:.2f}"
        agree = "" if r["category_agreement"] is None else f"{r['category_agreement']:.2f}"
        latest = r["beyond_top"][-1] if r["beyond_top"] else {}
        rho = (
            ""
            if latest.get("rho") is None
            else f"{latest['rho']:.2f} [{latest['rho_low']:.2f}, {latest['rho_high']:.2f}]"
        )
        flag = f" ({HOLDS_ONLY_AT_TOP})" if HOLDS_ONLY_AT_TOP in latest.get("flags", []) else ""
        lines.append(
            f"{r['layer'][:8]:8s} {r['unit']:4d}  {(r['label'] or '-')[:24]:24s} {(r['category'] or '-'):9s} "
            f"{precision:>9s}  {agree:>5s}  {rho:>19s}  {UnitLabel.Status(r['status']).label}{flag}"
        )
    return "\n".join(lines) + "\n"
