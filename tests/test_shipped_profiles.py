"""Every profile shipped in profiles/ loads, and says at its top what it is and how to run it."""

from pathlib import Path

import pytest

from loadgen.profile_files import load_profile
from tests.conftest import ROOT, run_cli

SHIPPED = sorted((ROOT / "profiles").glob("*.toml"))


def test_the_usual_profiles_are_shipped():
    assert {"quickstart.toml", "north-star.toml", "streaming.toml", "real-apis.toml"} <= {p.name for p in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_a_shipped_profile_loads(path: Path):
    profile = load_profile(path)
    assert profile.name == path.stem and profile.description


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_a_shipped_profile_begins_with_a_comment_block_saying_how_to_run_it(path: Path):
    lines = path.read_text().splitlines()
    header = lines[:next(i for i, line in enumerate(lines) if not line.startswith("#"))]
    assert len(header) >= 3, f"{path.name}: no comment block at the top"
    command = "faults" if load_profile(path).faults is not None else "run"  # a fault matrix runs with its own command
    assert f"loadgen {command} profiles/{path.name}" in "\n".join(header)


def test_loadgen_validate_accepts_every_shipped_profile():
    done = run_cli("validate", *(str(path.relative_to(ROOT)) for path in SHIPPED))
    assert done.returncode == 0, done.stderr
    assert [line.split()[1] for line in done.stdout.splitlines()] == [f"profiles/{p.name}" for p in SHIPPED]
