import json
import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"
REF = DATA / "regnet_zoo_public.json"
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def ref():
    """Published pycls complexity (independent golden values, tests/data/README.md names the source)."""
    return json.loads(REF.read_text())


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    from dse.cli import main

    def run(*args):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run
