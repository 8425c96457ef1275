"""Shared fixtures: the repository, the command-line tool the package is compared with."""

import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "fixtures"


def cli_path() -> pathlib.Path:
    """The eie-compress binary: $EIE_COMPRESS_BIN, else the release build."""
    given = os.environ.get("EIE_COMPRESS_BIN")
    return pathlib.Path(given) if given else ROOT / "target" / "release" / "eie-compress"


@pytest.fixture(scope="session")
def cli():
    """Runs the command line; returns (exit status, stdout, stderr)."""
    binary = cli_path()
    if not binary.is_file():
        pytest.skip(
            f"{binary} is missing: build it (cargo build --release) or set EIE_COMPRESS_BIN "
            "to compare the package with the command line"
        )

    def run(*args, check=True):
        done = subprocess.run(
            [str(binary), "--quiet", *map(str, args)], capture_output=True, text=True
        )
        if check and done.returncode != 0:
            raise AssertionError(f"eie-compress {' '.join(map(str, args))}: {done.stderr}")
        return done.returncode, done.stdout, done.stderr

    return run


@pytest.fixture(scope="session")
def cli_json(cli):
    """Runs the command line with --json; returns the parsed report."""

    def run(*args):
        _, out, _ = cli(*args, "--json")
        return json.loads(out)

    return run


def files_of(folder: pathlib.Path) -> dict:
    """Every file under `folder`, relative path to bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
