"""Answers made elsewhere: the authors' released CSV (one row a unit, three answers side by side) or a
long CSV (one row an answer). Bad rows are reported with their row numbers and skipped; good rows are
kept; importing the same file again adds nothing (each answer is keyed by file, row and column).
Both formats hold the paper's three-task answers, so imported answers are the default task's
(`task_kinds.default_task`), aggregated with its campaigns' answers."""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from django import forms
from django.db import transaction

from annotator.errors import ActionRefused
from annotator.forms import description_clean
from annotator.models import CATEGORY_CODES, Answer, Category, Layer, Network, Unit, Worker
from annotator.services.answers import answers_settle

WIDE = ("layer", "unit", "desc1", "cat1", "prec1")
LONG = ("network", "layer", "unit", "worker", "description", "category", "precision")
# Imported descriptions meet the form's rules, but may be as long as the stored field: the authors'
# released answers hold sentences of up to 76 characters, beyond the form's one or two words.
IMPORT_DESCRIPTION_MAX = 200
UNIT_MAX = 2**31 - 1  # the largest unit number the database stores
NAME_MAX = 200
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, kept by surrogateescape


class AnnotationImportError(ActionRefused):
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
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"precision {text[:40]!r} is not a number between 0 and 1") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"precision {text!r} is not between 0 and 1")
    return value


def _description(text: str) -> str:
    try:
        return description_clean(text, IMPORT_DESCRIPTION_MAX)
    except forms.ValidationError as error:
        raise ValueError(
            f"description {text[:40]!r}{'...' if len(text) > 40 else ''}: {' '.join(error.messages)}"
        ) from None


def _unit(text: str) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"unit {text[:40]!r} is not a whole number of 0 or more")
    if len(text) > 10 or int(text) > UNIT_MAX:
        raise ValueError(f"unit {text[:40]} is out of range (0 to {UNIT_MAX})")
    return int(text)


def _name(row: dict[str, str], column: str) -> str:
    text = (row.get(column) or "").strip()
    if not text:
        raise ValueError(f"empty {column}")
    if len(text) > NAME_MAX:
        raise ValueError(f"{column} has {len(text)} characters (at most {NAME_MAX})")
    return text


def _answers_of(row: dict[str, str], wide: bool, columns: list[int]) -> list[tuple[str, str, str, float]]:
    """(column key, description, category, precision) of each answer in a row; raises ValueError."""
    if not wide:
        description = (row.get("description") or "").strip()
        if not description:
            raise ValueError("empty description")
        return [
            (
                "",
                _description(description),
                _category(row.get("category") or ""),
                _precision(row.get("precision") or ""),
            )
        ]
    answers = []
    for i in columns:
        desc, cat, prec = (row.get(f"{name}{i}") or "" for name in ("desc", "cat", "prec"))
        if not (desc.strip() or cat.strip() or prec.strip()):
            continue
        if not desc.strip():
            raise ValueError(f"answer {i} has no description")
        answers.append((str(i), _description(desc), _category(cat), _precision(prec)))
    if not answers:
        raise ValueError("no answers")
    return answers


def _rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str] | None, str]]]:
    """The header and every row as (line number, fields or None, why not). A row that is not UTF-8 or
    that the CSV reader refuses (a field beyond its size limit) is kept as an error, never fatal."""
    text = path.read_bytes().decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        header = []
    except csv.Error as error:
        raise AnnotationImportError(f"{path.name}: the header row cannot be read: {error}") from None
    if any(_UNDECODABLE.search(name) for name in header):
        raise AnnotationImportError(f"{path.name}: the header row is not UTF-8 text; save the file as UTF-8.")
    rows: list[tuple[int, dict[str, str] | None, str]] = []
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            rows.append((start, None, f"the row cannot be read: {error}"))
            continue
        if not any(value.strip() for value in values):
            continue
        if any(_UNDECODABLE.search(value) for value in values):
            rows.append((start, None, "not UTF-8 text; save the file as UTF-8"))
            continue
        rows.append((start, dict(zip(header, values, strict=False)), ""))
    return header, rows


def annotations_import(*, path: Path, network: str) -> ImportReport:
    path = Path(path)
    if not path.is_file():
        raise AnnotationImportError(f"No such file: {path}")
    header, rows = _rows(path)
    wide = all(name in header for name in WIDE)
    if not wide and not all(name in header for name in LONG):
        raise AnnotationImportError(
            f"{path.name}: unknown columns {', '.join(header) or '(none)'}; expected the wide format "
            f"({', '.join(WIDE)}, ...) or the long one ({', '.join(LONG)})."
        )
    columns = sorted(int(name[4:]) for name in header if name.startswith("desc") and name[4:].isdigit())
    report = ImportReport(rows=len(rows))
    net, _ = Network.objects.get_or_create(name=network)
    layers = {layer.name: layer for layer in net.layers.all()}
    units: dict[tuple[str, int], Unit] = {}
    workers: dict[str, Worker] = {}
    pending: list[Answer] = []
    with transaction.atomic():
        for number, row, problem in rows:
            try:
                if row is None:
                    raise ValueError(problem)
                layer_name = _name(row, "layer")
                index = _unit(row.get("unit") or "")
                answers = _answers_of(row, wide, columns)
                name = "" if wide else (row.get("worker") or "").strip()[:NAME_MAX]
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
                name = name or f"{path.name}:{number}"
                if name not in workers:
                    workers[name] = Worker.objects.get_or_create(kind=Worker.Kind.IMPORTED, external_id=name)[0]
                worker = workers[name]
            for column, description, category, precision in answers:
                pending.append(
                    Answer(
                        unit=units[key],
                        worker=worker,
                        source=Answer.Source.IMPORTED,
                        description=description,
                        category=category,
                        precision=precision,
                        import_key=f"{path.name}:{number}:{column}",
                    )
                )
        keys = [answer.import_key for answer in pending]
        present = set(Answer.objects.filter(import_key__in=keys).values_list("import_key", flat=True))
        fresh = [answer for answer in pending if answer.import_key not in present]
        Answer.objects.bulk_create(fresh, batch_size=1000)
        answers_settle(Answer.objects.filter(import_key__in=[a.import_key for a in fresh]).values_list("pk", flat=True))
        for layer in layers.values():
            count = layer.units.count()
            if layer.num_units < count:
                Layer.objects.filter(pk=layer.pk).update(num_units=count)
    report.answers_created, report.answers_present = len(fresh), len(present)
    return report
