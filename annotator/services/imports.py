"""Answers made elsewhere, in a file format a HIT task reads (`Task.import_formats`; the describe task:
the authors' released CSV, one row a unit with answers side by side, or a long CSV, one row an
answer). Bad rows are reported with their row numbers and skipped; good rows are kept; importing the
same file again adds nothing (each answer is keyed by file, row and column). Imported answers belong
to no campaign: the task whose format the file is aggregates them with its campaigns' answers."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from annotator.errors import ActionRefused
from annotator.models import Answer, Layer, Network, Unit, Worker
from annotator.services.answers import answers_settle
from annotator.task_kinds import tasks

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


def _unit(text: str) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"unit {text[:40]!r} is not a whole number of 0 or more")
    if len(text) > 10 or int(text) > UNIT_MAX:
        raise ValueError(f"unit {text[:40]} is out of range (0 to {UNIT_MAX})")
    return int(text)


def _name(row: dict[str, str], column: str) -> str:
    return name_check((row.get(column) or "").strip(), column)


def name_check(text: str, what: str) -> str:
    """A network's, layer's or worker's name as imported: 1 to NAME_MAX visible characters, no path."""
    if not text:
        raise ValueError(f"empty {what}")
    if len(text) > NAME_MAX:
        raise ValueError(f"{what} has {len(text)} characters (at most {NAME_MAX})")
    if any(not c.isprintable() for c in text) or "/" in text or "\\" in text or text in (".", ".."):
        raise ValueError(f"{what} {text[:40]!r} holds control characters or a path; use a plain name")
    return text


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
    formats = [f for task in tasks().values() for f in task.import_formats()]
    chosen = next((f for f in formats if f.matches(header)), None)
    if chosen is None:
        expected = " or ".join(
            f"{f.name} ({', '.join(f.columns)}{', ...' if not f.per_worker else ''})" for f in formats
        )
        raise AnnotationImportError(
            f"{path.name}: unknown columns {', '.join(header) or '(none)'}; expected {expected}."
        )
    try:
        network = name_check(network.strip(), "network")
    except ValueError as error:
        raise AnnotationImportError(f"--network: {error}.") from error
    report = ImportReport(rows=len(rows))
    answered: dict[tuple[str, str, int], int] = {}  # (worker, layer, unit) -> its row: one answer a unit
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
                answers = chosen.answers(header, row)
                name = name_check(row["worker"].strip(), "worker") if chosen.per_worker and row.get("worker") else ""
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
            if chosen.per_worker and name:
                first = answered.setdefault((name, layer_name, index), number)
                stored = Answer.objects.filter(
                    worker__kind=Worker.Kind.IMPORTED, worker__external_id=name, unit=units[key]
                ).exclude(import_key__startswith=f"{path.name}:")
                if first != number or stored.exists():
                    where = f"row {first}" if first != number else "an earlier import"
                    report.errors.append(
                        f"row {number}: worker {name[:40]!r} answered {layer_name} unit {index} already ({where}): "
                        "one answer a worker and unit, so this row is not imported"
                    )
                    continue
            if chosen.per_worker:
                name = name or f"{path.name}:{number}"
                if name not in workers:
                    workers[name] = Worker.objects.get_or_create(kind=Worker.Kind.IMPORTED, external_id=name)[0]
                worker = workers[name]
            for column, values in answers:
                pending.append(
                    Answer(
                        unit=units[key],
                        worker=worker,
                        source=Answer.Source.IMPORTED,
                        import_key=f"{path.name}:{number}:{column}",
                        **values,
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
