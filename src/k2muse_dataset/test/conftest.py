from pathlib import Path

import pytest
from k2muse_dataset.process import process_release
from k2muse_dataset.synth import generate_release

REAL_C3D = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "c3d"


@pytest.fixture(scope="session")
def real_c3d_dir() -> Path:
    if not REAL_C3D.is_dir():
        pytest.skip(f"real c3d test data not found at {REAL_C3D}")
    return REAL_C3D


@pytest.fixture(scope="session")
def release(tmp_path_factory) -> Path:
    """Small synthetic release: 2 participants (v5 and v7.3 .mat), 2 modes, 3 trials, 8 s."""
    root = tmp_path_factory.mktemp("release")
    return generate_release(root, participants=("P01", "P02"), mode_keys=("LG_0", "AS_10"),
                            trials=3, duration_s=8.0, seed=3)


@pytest.fixture(scope="session")
def processed(release, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("out")
    report = process_release(release, out, jobs=2)
    return out, report
