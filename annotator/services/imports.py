"""Answers made elsewhere: the authors' released CSV (one row a unit, three answers side by side) or a
long CSV (one row an answer). Bad rows are reported with their row numbers and skipped; good rows are
kept; importing the same file again adds nothing (each answer is keyed by file, row and column)."""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from annotator.models import CATEGORY_CODES, Answer, Category, Layer, Network, Unit, Worker

WIDE = ("layer", "unit", "desc1", "cat1", "prec1")
LONG = ("network", "layer", "unit", "worker", "description", "category", "precision")


class AnnotationImportError(Exception):
    pass


@dataclass
class ImportReport:
    rows: int = 0
    answers_created: int = 0
    answers_present: int = 0
    units_created: int = 0
    errors: list[str] = field(default_factory=list)


def _category(text: str) -> str:
    text = text.strip().lower()
    if text.isdigit() and int(text) in CATEGORY_CODES:
        return CATEGORY_CODES[int(text)].value
    if text in Category.values:
        return text
    by_label = {label.lower(): value for value, label in Category.choices}
    if text in by_label:
        return by_label[text]
    raise ValueError(f"category {text!r} is not a code 1-6 or one of {', '.join(Category.values)}")


def _precision(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"precision {text!r} is not between 0 and 1")
    return value


def _answers_of(row: dict[str, str], wide: bool, columns: list[int]) -> list[tuple[str, str, str, float]]:
    """(column key, description, category, precision) of each answer in a row; raises ValueError."""
    if not wide:
        description = (row.get("description") or "").strip()
        if not description:
            raise ValueError("empty description")
        return [("", description, _category(row.get("category") or ""), _precision(row.get("precision") or ""))]
    answers = []
    for i in columns:
        desc, cat, prec = (row.get(f"{name}{i}") or "" for name in ("desc", "cat", "prec"))
        if not (desc.strip() or cat.strip() or prec.strip()):
            continue
        if not desc.strip():
            raise ValueError(f"answer {i} has no description")
        answers.append((str(i), desc.strip(), _category(cat), _precision(prec)))
    if not answers:
        raise ValueError("no answers")
    return answers


def annotations_import(*, path: Path, network: str) -> ImportReport:
    path = Path(path)
    if not path.is_file():
        raise AnnotationImportError(f"No such file: {path}")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        reader.fieldnames = header
        wide = all(name in header for name in WIDE)
        if not wide and not all(name in header for name in LONG):
            raise AnnotationImportError(
                f"{path.name}: unknown columns {', '.join(header) or '(none)'}; expected the wide format "
                f"({', '.join(WIDE)}, ...) or the long one ({', '.join(LONG)}).")
        columns = sorted(int(name[4:]) for name in header if name.startswith("desc") and name[4:].isdigit())
        rows = list(enumerate(reader, start=2))
    report = ImportReport(rows=len(rows))
    net, _ = Network.objects.get_or_create(name=network)
    layers = {layer.name: layer for layer in net.layers.all()}
    units: dict[tuple[str, int], Unit] = {}
    workers: dict[str, Worker] = {}
    pending: list[Answer] = []
    with transaction.atomic():
        for number, row in rows:
            try:
                layer_name = (row.get("layer") or "").strip()
                if not layer_name:
                    raise ValueError("empty layer")
                index = int((row.get("unit") or "").strip())
                if index < 0:
                    raise ValueError("negative unit")
                answers = _answers_of(row, wide, columns)
            except ValueError as error:
                report.errors.append(f"row {number}: {error}")
                continue
            if layer_name not in layers:
                layers[layer_name] = Layer.objects.create(network=net, name=layer_name, order=len(layers))
            key = (layer_name, index)
            if key not in units:
                units[key], created = Unit.objects.get_or_create(layer=layers[layer_name], index=index)
                report.units_created += created
            worker = None
            if not wide:
                name = (row.get("worker") or "").strip() or f"{path.name}:{number}"
                if name not in workers:
                    workers[name] = Worker.objects.get_or_create(kind=Worker.Kind.IMPORTED, external_id=name)[0]
                worker = workers[name]
            for column, description, category, precision in answers:
                pending.append(Answer(
                    unit=units[key], worker=worker, source=Answer.Source.IMPORTED, description=description[:200],
                    category=category, precision=precision, import_key=f"{path.name}:{number}:{column}"))
        keys = [answer.import_key for answer in pending]
        present = set(Answer.objects.filter(import_key__in=keys).values_list("import_key", flat=True))
        fresh = [answer for answer in pending if answer.import_key not in present]
        Answer.objects.bulk_create(fresh, batch_size=1000)
        for layer in layers.values():
            count = layer.units.count()
            if layer.num_units < count:
                Layer.objects.filter(pk=layer.pk).update(num_units=count)
    report.answers_created, report.answers_present = len(fresh), len(present)
    return report
