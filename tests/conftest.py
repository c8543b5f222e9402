from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real lunar data folder beside the checkout; tests needing it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real lunar data not present at {SHARED_DATA} (it sits beside the checkout in CI)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    """One tiny synthetic world (seed 1) shared by the tests that only read it."""
    from selenite.config import resolve_config
    from selenite.pipelines import run_synth_world
    from selenite.synth.world import WorldConfig, confs

    out = tmp_path_factory.mktemp("world") / "w"
    cfg = resolve_config(WorldConfig, confs, stage="synth", preset="tiny", overrides={"seed": 1})
    return run_synth_world(cfg, out)
