"""The examples run: the job farm does every job, the two organisations trade as
docs/records.md shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "job_farm.py"


@pytest.mark.timeout(300)
def test_the_job_farm_does_every_job() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stderr
    done = re.search(r"^(\d+) jobs done by (\d+) workers", result.stdout, re.MULTILINE)
    assert done is not None, result.stdout
    jobs, workers = int(done[1]), int(done[2])
    per_worker = [int(n) for n in re.findall(r"^\s+worker-\d+: (\d+) jobs$", result.stdout, re.MULTILINE)]
    assert jobs > 0
    assert sum(per_worker) == jobs
    assert len(per_worker) <= workers
    assert "left in the space: 0 tuples" in result.stdout
    assert result.stderr == ""


TRADING = EXAMPLE.parent / "trading.py"


@pytest.mark.timeout(120)
def test_the_trading_example_trades() -> None:
    result = subprocess.run(
        [sys.executable, str(TRADING)], capture_output=True, text=True, timeout=100, check=False
    )
    assert result.returncode == 0, result.stderr
    shown = re.search(r"It prints:\n\n```\n(.*?)```", (ROOT / "docs" / "records.md").read_text(), re.DOTALL)
    assert shown is not None
    assert result.stdout == shown[1]
    assert result.stderr == ""
