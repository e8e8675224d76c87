"""The package's ament_flake8/ament_pep257 equivalent: ruff with the workspace configuration."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def test_ruff_finds_nothing_in_this_package():
    beside = Path(sys.executable).parent / "ruff"
    ruff = str(beside) if beside.exists() else shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    package = Path(__file__).resolve().parents[1]
    result = subprocess.run([ruff, "check", str(package)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
