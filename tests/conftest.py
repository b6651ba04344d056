"""Shared by the tests: no warm exercise worker outlives the test session, and tests
marked `slow` run only with `bash run.sh test --slow` (LLM_TUTORIAL_SLOW=1)."""

import os

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: a long case; runs with bash run.sh test --slow"
    )


def pytest_collection_modifyitems(config, items):
    if os.environ.get("LLM_TUTORIAL_SLOW"):
        return
    skip = pytest.mark.skip(reason="a long case: bash run.sh test --slow runs it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _no_warm_worker_left():
    "The exercise checks start a warm worker (appendix F); stop it at the end."
    yield
    from llm_tutorial.exercises import warm_stop

    warm_stop()
