"""Fixtures of the exo_hardware tests."""

import pytest


@pytest.fixture
def hardware_libraries():
    """Skip the test (not the module: launch_testing's collection hook imports every test file
    of the folder) where opensourceleg or python-can cannot be imported."""
    try:
        import can  # noqa: F401
        import opensourceleg  # noqa: F401
    except ModuleNotFoundError as exc:
        pytest.skip(f"{exc}: an optional hardware dependency (tools/requirements-hardware.txt)")
