"""The load test, small and bounded, as part of the suite: gunicorn over PostgreSQL, 50 simulated
workers, replays and double submits, PostgreSQL restarted in the middle; every accepted submission
stored exactly once, every outage answered with a 503 that the workers retried."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connections

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="gunicorn's worker processes need a server database (CI runs this on PostgreSQL)",
)
def test_load_with_a_database_restart_stores_each_accepted_answer_once() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/load.py", "--quick", "--restart-database"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    connections.close_all()  # ours did not survive the restart either
    out = result.stdout
    assert result.returncode == 0, out + result.stderr[-3000:]
    assert "every accepted submission stored exactly once" in out
    assert "PostgreSQL restarted during the run" in out and "500" not in out.split("asked to retry")[-1]
