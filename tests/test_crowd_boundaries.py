"""Only a crowd's adapter knows its platform: no other module names one, and no view, command or task
imports a platform's client (the issue's "one interface per crowd")."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = re.compile(
    r"(?i:mturk|mechanical turk|prolific|sandbox|turksubmitto)|\bon_(mturk|prolific|platform)\b|\bBackend\.[A-Z]"
)
# Where a platform may be named: its adapter (and the crowds' registry), its client package, the models and
# their migrations (the rows a platform fills), settings (what the environment configures), and the
# platforms' own templates.
ALLOWED = (
    "annotator/crowds/",
    "annotator/models/",
    "annotator/migrations/",
    "mturk/",
    "prolific/",
    "config/settings.py",
    "templates/crowds/",
)
CODE = ("annotator", "config", "templates", "mturk", "prolific", "pipeline")
CLIENT = re.compile(r"^\s*(from|import)\s+(mturk|prolific)\b|import_module\(\s*[\"'](mturk|prolific)", re.M)
INTERFACES = ("annotator/views/", "annotator/management/commands/", "annotator/tasks.py")


def files() -> list[tuple[str, str]]:
    found = []
    for top in CODE:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in (".py", ".html", ".js") and "__pycache__" not in path.parts:
                found.append((path.relative_to(ROOT).as_posix(), path.read_text()))
    return found


def test_no_module_outside_the_adapters_names_a_platform() -> None:
    offenders = []
    for name, text in files():
        if name.startswith(ALLOWED):
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if PLATFORM.search(line):
                offenders.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not offenders, "a platform is named outside its adapter:\n" + "\n".join(offenders)


def test_no_view_command_or_task_imports_a_client() -> None:
    offenders = [name for name, text in files() if name.startswith(INTERFACES) and CLIENT.search(text)]
    assert not offenders, f"these import a platform's client: {offenders}"


def test_the_boundary_check_sees_a_platform_when_one_is_named() -> None:
    """The patterns above catch what they are meant to (so the two tests cannot pass by matching nothing)."""
    assert PLATFORM.search("if campaign.platform == 'mturk':") and PLATFORM.search("Campaign.Backend.PROLIFIC")
    assert CLIENT.search("from mturk import client as mturk") and CLIENT.search("import prolific.client")
    assert not PLATFORM.search("crowd_for(campaign).sync(campaign)")
