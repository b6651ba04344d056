"""Shared by the tests: no warm exercise worker outlives the test session, and tests
marked `slow` run only with `bash run.sh test --slow` (LLM_TUTORIAL_SLOW=1). `bash run.sh
test` runs the files on two pytest-xdist workers (`--dist loadfile`: a file's tests, and
its module fixtures, stay in one process)."""

import os, signal

import pytest

# A shell's background job (`cmd &`) starts with Ctrl-C ignored, and children inherit
# that: the tests that press Ctrl-C in a real process need it back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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


def pytest_sessionfinish(session):
    """The exercise checks start a warm worker (appendix F): stop it at the end, once
    (with pytest-xdist's workers, in the process that started them)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    from llm_tutorial.exercises import warm_stop

    warm_stop()
