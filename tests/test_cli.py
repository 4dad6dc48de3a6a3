"""CLI: help works, bad flags and bad values exit 2 with one line, simulate writes a file."""

from __future__ import annotations

import subprocess
import sys

import pytest

from eqlgn import load_dataset
from eqlgn.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eqlgn", *args], capture_output=True, text=True,
                          timeout=300)


def test_simulate_help():
    proc = run_cli("simulate", "--help")
    assert proc.returncode == 0 and "--law" in proc.stdout and "--out" in proc.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["simulate", "--out", "x.npz", "--bogus"], "unrecognized arguments: --bogus"),
        (["simulate", "--law", "gravty", "--out", "x.npz"], "did you mean 'gravity'|valid: charge"),
        (["simulate", "--n", "1", "--out", "x.npz"], "at least 2"),
        (["simulate", "--dim", "two", "--out", "x.npz"], "invalid int value"),
        (["info", "missing.npz"], "does not exist"),
    ],
)
def test_user_errors_exit_2_with_one_line(args, message, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "eqlgn", *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    import re
    assert re.search(message, lines[0])


def test_simulate_writes_a_valid_dataset(tmp_path, capsys):
    out = tmp_path / "spring.npz"
    code = main(["simulate", "--law", "spring", "--sims", "4", "--steps", "20", "--out", str(out),
                 "--no-progress"])
    assert code == 0
    data = load_dataset(out)
    assert len(data) == 4 * 4 and data.meta.law == "spring"
    assert "ParticleDataset: law=spring" in capsys.readouterr().out


def test_debug_flag_shows_the_traceback():
    proc = run_cli("--debug", "simulate", "--n", "1", "--out", "x.npz")
    assert proc.returncode != 0 and "Traceback" in proc.stderr
