import subprocess
import sys
from pathlib import Path

from autonomy.cli import COMMANDS, main

BIN = Path(sys.executable).parent


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_a_clear_error(capsys):
    assert main(["no-such-command"]) == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err


def test_bench_runs_from_any_directory(tmp_path):
    # the console script does not put the checkout on sys.path: `autonomy bench` must find bench/ itself
    r = subprocess.run([str(BIN / "autonomy"), "bench", "--help"], cwd=tmp_path, capture_output=True, text=True, check=False,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "--only" in r.stdout
