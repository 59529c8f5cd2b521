"""The researcher's files of a presence campaign, read and checked before anything is created: a proxy
CSV (`image,label,score`: how likely the label is in the image, a score in [0, 1] from elsewhere, such
as CLIP or SigLIP, or dataset labels) and a gold CSV (`image,label,present`: images whose answer is
known). Every bad row is named with its line number; a file with any bad row is refused whole."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

from annotator.labels import normalise
from annotator.services.campaigns import CampaignError

YES = {"yes", "y", "1", "true", "t"}
NO = {"no", "n", "0", "false", "f"}
MAX_PROBLEMS = 10  # named in the message; the rest are counted


class PresenceFileError(CampaignError):
    pass


def _rows(path: Path, columns: tuple[str, ...], what: str) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip().lower() for name in reader.fieldnames or []]
            missing = [name for name in columns if name not in header]
            if missing:
                raise PresenceFileError(
                    f"The {what} {path} has no column {', '.join(missing)}: its header must hold "
                    f"{','.join(columns)} (it has {','.join(header) or 'nothing'})."
                )
            rows = []
            for line, raw in enumerate(reader, start=2):
                row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
                rows.append((line, row))
            return rows
    except OSError as error:
        raise PresenceFileError(f"Cannot read the {what} {path}: {error.strerror or error}.") from error
    except (UnicodeDecodeError, csv.Error) as error:
        raise PresenceFileError(f"The {what} {path} is not a UTF-8 CSV file: {error}.") from error


def _read(
    path: Path,
    columns: tuple[str, ...],
    what: str,
    images: dict[str, int],
    labels: set[str],
    value: Callable[[str], object],
    value_error: str,
) -> dict[tuple[str, int], object]:
    """(normalised label, image id) -> value of every row; refuses the file over any bad row."""
    out: dict[tuple[str, int], object] = {}
    problems: list[str] = []
    for line, row in _rows(path, columns, what):
        image, label, text = row.get("image", ""), normalise(row.get("label", "")), row.get(columns[2], "")
        if image not in images:
            problems.append(f"line {line}: image {image!r} is not in the dissection's probe set")
            continue
        if label not in labels:
            problems.append(f"line {line}: label {row.get('label', '')!r} is none of the campaign's labels")
            continue
        try:
            out[(label, images[image])] = value(text)
        except ValueError:
            problems.append(f"line {line}: {columns[2]} {text!r} {value_error}")
    if problems:
        more = f" (and {len(problems) - MAX_PROBLEMS} more)" if len(problems) > MAX_PROBLEMS else ""
        raise PresenceFileError(
            f"The {what} {path} has {len(problems)} bad row(s); nothing was created: "
            + "; ".join(problems[:MAX_PROBLEMS])
            + more
            + f". Labels asked: {', '.join(sorted(labels))}."
        )
    return out


def _score(text: str) -> float:
    number = float(text)
    if not math.isfinite(number) or not 0 <= number <= 1:
        raise ValueError(text)
    return number


def _present(text: str) -> bool:
    if text.lower() in YES:
        return True
    if text.lower() in NO:
        return False
    raise ValueError(text)


def proxy_read(path: Path, images: dict[str, int], labels: set[str]) -> dict[tuple[str, int], float]:
    """`images`: probe image path -> image id; `labels`: the normalised labels asked about."""
    read = _read(path, ("image", "label", "score"), "proxy file", images, labels, _score, "is not a number in [0, 1]")
    return {key: float(v) for key, v in read.items()}  # type: ignore[arg-type]  # _score's floats


def gold_read(path: Path, images: dict[str, int], labels: set[str]) -> dict[tuple[str, int], bool]:
    read = _read(path, ("image", "label", "present"), "gold file", images, labels, _present, "is not yes or no")
    return {key: bool(v) for key, v in read.items()}
