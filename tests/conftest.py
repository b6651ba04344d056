"""Shared by the tests: no warm exercise worker outlives the test session, and tests
marked `slow` run only with `bash run.sh test --slow` (LLM_TUTORIAL_SLOW=1). `bash
run.sh test` runs them on two pytest-xdist workers, the chapters included
(tests/test_notebooks.py)."""

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


# pytest-xdist's units of work (`--dist loadfile`) are test files: a file's tests share
# its module fixtures. The longest start first, so that the two workers end at about the
# same time. (`--dist loadgroup` would split a file, but pytest-xdist 3.8 ignores its
# groups under pytest 9.)
LONGEST = ["test_notebooks", "test_runs", "test_fresh_clone", "test_reliability",
           "test_book", "test_exercises", "test_speedrun", "test_gpu_check",
           "test_ddp"]  # fmt: skip


def _rank(item) -> int:
    name = item.path.stem
    return LONGEST.index(name) if name in LONGEST else len(LONGEST)


def pytest_collection_modifyitems(config, items):
    items.sort(key=_rank)  # stable: a file's tests keep their order
    if os.environ.get("LLM_TUTORIAL_SLOW"):
        return
    skip = pytest.mark.skip(reason="a long case: bash run.sh test --slow runs it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    "Seconds of test time per part (a file, or a chapter), both workers together."
    parts = {}
    for reports in terminalreporter.stats.values():
        for r in reports:
            if isinstance(r, pytest.TestReport):
                path, _, name = r.nodeid.partition("::")
                unit = path.removeprefix("tests/")
                if "test_notebooks" in unit or "test_fresh_clone" in unit:
                    unit = name  # a chapter, or a group of chapters
                parts[unit] = parts.get(unit, 0.0) + r.duration
    if parts:
        top = sorted(parts.items(), key=lambda kv: -kv[1])
        text = ", ".join(f"{name} {sec:.0f} s" for name, sec in top)
        terminalreporter.write_line(f"time by part: {text}")


def pytest_sessionfinish(session):
    """The exercise checks start a warm worker (appendix F): stop it at the end, once
    (with pytest-xdist's workers, in the process that started them)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    from llm_tutorial.exercises import warm_stop

    warm_stop()
