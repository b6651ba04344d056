"""Shared by the tests: no warm exercise worker outlives the test session."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def _no_warm_worker_left():
    "The exercise checks start a warm worker (appendix F); stop it at the end."
    yield
    from llm_tutorial.exercises import warm_stop

    warm_stop()
