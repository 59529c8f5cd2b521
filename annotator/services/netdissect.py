"""Network Dissection's automatic labels (its tally.csv), kept beside the crowd's for the same units.

NetDissect numbers units from 1 (its unit u+1 is our unit u) and calls a unit a detector of its
label when the IoU `score` reaches 0.04 (`pipeline.tally.iou_detector`); both are options."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from annotator.labels import NETDISSECT_CATEGORIES, netdissect_label
from annotator.models import AutoLabel, Layer, Network, Unit
from pipeline.tally import iou_detector

SOURCE = "netdissect"
COLUMNS = ("unit", "category", "label", "score")


class TallyImportError(Exception):
    pass


@dataclass
class TallyReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    detectors: int = 0
    errors: list[str] = field(default_factory=list)


def tally_import(
    *, path: Path, network: str, layer: str, threshold: float = 0.04, one_based: bool = True
) -> TallyReport:
    """Read a tally.csv into AutoLabel rows of `network`/`layer` (created when missing). Bad rows are
    reported by number and skipped; importing again updates the same rows."""
    path = Path(path)
    if not path.is_file():
        raise TallyImportError(f"No such file: {path}")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [name for name in COLUMNS if name not in header]
        if missing:
            raise TallyImportError(
                f"{path.name} is not a NetDissect tally.csv: it lacks the column(s) "
                f"{', '.join(missing)} (found {', '.join(header) or 'none'})."
            )
        reader.fieldnames = header
        rows = list(enumerate(reader, start=2))
    report = TallyReport(rows=len(rows))
    parsed: dict[int, tuple[str, str, str, float]] = {}
    for number, row in rows:
        try:
            index = int((row["unit"] or "").strip()) - (1 if one_based else 0)
            if index < 0:
                raise ValueError(f"unit {row['unit']!r} is below {1 if one_based else 0}")
            raw_category = (row["category"] or "").strip().lower()
            label = netdissect_label(row["label"] or "")
            if not label:
                raise ValueError("empty label")
            score = float(row["score"])
            if not math.isfinite(score):
                raise ValueError(f"score {row['score']!r} is not a number")
        except (TypeError, ValueError) as error:
            report.errors.append(f"row {number}: {error}")
            continue
        if index in parsed:
            report.errors.append(f"row {number}: unit {row['unit']} appears twice; the first row is kept")
            continue
        parsed[index] = (label, NETDISSECT_CATEGORIES.get(raw_category, ""), raw_category, score)
    net, _ = Network.objects.get_or_create(name=network)
    with transaction.atomic():
        lay, _ = Layer.objects.get_or_create(network=net, name=layer, defaults={"order": net.layers.count()})
        units = {u.index: u for u in Unit.objects.filter(layer=lay)}
        for index in parsed:
            if index not in units:
                units[index] = Unit.objects.create(layer=lay, index=index)
        for index, (label, category, raw, score) in sorted(parsed.items()):
            _, created = AutoLabel.objects.update_or_create(
                unit=units[index],
                source=SOURCE,
                defaults={
                    "label": label,
                    "category": category,
                    "source_category": raw,
                    "score": score,
                    "detector": iou_detector(score, threshold),
                },
            )
            report.created += created
            report.updated += not created
            report.detectors += iou_detector(score, threshold)
        if lay.num_units < len(units):
            Layer.objects.filter(pk=lay.pk).update(num_units=len(units))
    return report
