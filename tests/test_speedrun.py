"""Issue 34: `llm-tutorial speedrun` (appendix D). A tiny speedrun under a real process
(seconds of training, a tiny model, a temporary results file), its record's fields, the
records table and the record test on synthetic runs, and one error line for bad
options. No wall-clock time is asserted."""

import json, os, subprocess, sys
from pathlib import Path

import pytest

from llm_tutorial.speedrun import (
    RULES,
    append_record,
    beats_record,
    print_records,
    read_records,
    standings,
    welch_p,
    wilson,
)

ENV = {**os.environ, "MPLBACKEND": "Agg"}
TINY = (
    "--max-minutes 0.05 --max-steps 4 --warmup-steps 1 --batch-size 2 "
    "--context-length 300 --d-model 32 --num-layers 1 --num-heads 2 --d-ff 64 "
    "--eval-interval 0 --checkpoint-interval 0 --no-progress --device cpu"
).split()


def run(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "llm_tutorial.cli", "speedrun", *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
    )


def one_error_line(p) -> str:
    "The process failed with status 2, one line on stderr and no traceback."
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "llm-tutorial speedrun: error:" in lines[0], p.stderr
    return lines[0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    "A tiny speedrun's record, written to a temporary results file."
    tmp = tmp_path_factory.mktemp("speedrun")
    results = tmp / "speedrun.jsonl"
    p = run("--idea", "tiny test", "--seed", 3, "--out", tmp / "run",
            "--results", results, *TINY)  # fmt: skip
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return results, p


def test_tiny_speedrun_appends_one_record(tiny):
    results, p = tiny
    lines = results.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["idea"] == "tiny test" and rec["seed"] == 3
    assert rec["command"].startswith("llm-tutorial speedrun --idea 'tiny test'")
    m = rec["machine"]
    assert m["cores"] >= 1 and m["threads"] >= 1 and m["cpu"] and m["device"] == "cpu"
    assert len(rec["load_start"]) in (0, 3) and len(rec["load_end"]) in (0, 3)
    assert rec["rules"] == {**RULES, "minutes": 0.05}
    assert rec["knobs"]["d_model"] == 32 and "corpus" not in rec["knobs"]
    # scored against the floor on every validation story, judged on 300 stories
    assert rec["entropy_floor"] > 0 and rec["doc_val_loss"] > rec["entropy_floor"]
    excess = rec["doc_val_loss"] - rec["entropy_floor"]
    assert rec["excess_loss"] == pytest.approx(excess)
    assert rec["ratio"] == pytest.approx(rec["doc_val_loss"] / rec["entropy_floor"])
    assert rec["valid_n"] == RULES["samples"] and 0 <= rec["valid"] <= 1
    lo, hi = rec["valid_ci"]
    assert lo <= rec["valid"] <= hi
    assert 1 <= rec["steps"] <= 4 and rec["tokens"] == rec["steps"] * 2 * 300
    assert rec["mfu"] is None or rec["mfu"] > 0
    assert "== speedrun 'tiny test', seed 3:" in p.stdout


def test_short_runs_are_not_records(tiny, capsys):
    results, _ = tiny
    runs = read_records(results)
    assert len(runs) == 1 and standings(runs) == []  # 0.05 minutes: not the rules
    print_records(runs)
    assert "no speedrun under the rules yet" in capsys.readouterr().out


def fake(idea, seed, ratio, valid=0.5):
    "A made-up record under the rules: a loss `ratio` times the floor."
    return dict(when="2026-12-07T06:00:00+00:00", idea=idea, seed=seed,
                command=f"llm-tutorial speedrun --seed {seed}",
                machine=dict(cpu="a CPU", cores=2, threads=2), load_start=[2.0, 2, 2],
                load_end=[2.0, 2, 2], rules=dict(RULES),
                excess_loss=0.46 * (ratio - 1), ratio=ratio, valid=valid, valid_n=300,
                valid_ci=list(wilson(round(valid * 300), 300)), tokens=4e6,
                steps=2000, mfu=0.1)  # fmt: skip


def test_table_and_record_test(tmp_path, capsys):
    path = tmp_path / "speedrun.jsonl"
    ratios = dict(
        baseline=(1.060, 1.050, 1.055),
        noise=(1.052, 1.058, 1.049),
        better=(1.045, 1.043, 1.047),
        after=(1.044, 1.046, 1.042),
    )
    runs = [fake(i, s, x) for i in ("baseline", "noise", "better") for s, x in
            enumerate(ratios[i])]  # fmt: skip
    runs += [fake("two seeds", s, 1.01) for s in (0, 1)]
    runs += [fake("after", s, x) for s, x in enumerate(ratios["after"])]
    for r in runs:
        append_record(r, path)
    rows = standings(read_records(path))
    assert [r["idea"] for r in rows] == ["baseline", "noise", "better", "two seeds",
                                         "after"]  # fmt: skip
    assert [r["record"] for r in rows] == [True, False, True, False, False]
    # "after" is tested against "better", the record before it, not the baseline
    assert rows[4]["p"] == pytest.approx(welch_p(ratios["after"], ratios["better"]))
    assert welch_p(ratios["after"], ratios["baseline"]) < 0.05 < rows[4]["p"]
    assert rows[0]["ratio"] == pytest.approx(1.055) and rows[0]["seeds"] == [0, 1, 2]
    assert rows[0]["valid"] == pytest.approx(0.5)
    assert rows[0]["p"] is None and rows[3]["p"] is None
    assert beats_record(path, "better") == (True, rows[2]["p"])
    assert beats_record(path, "noise")[0] is False
    with pytest.raises(ValueError, match="no runs of 'nope'"):
        beats_record(path, "nope")
    print_records(runs)
    out = capsys.readouterr().out
    assert "1. baseline -- RECORD (the first)" in out
    assert "3. better -- RECORD (p = " in out
    assert "4. two seeds -- screened (fewer than 3 seeds)" in out
    assert "$ llm-tutorial speedrun --seed 0" in out


def test_welch_p():
    # SciPy's ttest_ind(new, old, equal_var=False, alternative="less") for these
    assert welch_p([1.10, 1.12, 1.11], [1.15, 1.13, 1.16]) == pytest.approx(
        0.0160994, abs=1e-6
    )
    assert welch_p([1, 2, 3, 4], [2, 3, 4, 5, 6, 7]) == pytest.approx(
        0.0403903, abs=1e-6
    )
    assert welch_p([1.0, 1.02, 1.5], [1.1, 1.1, 1.12]) == pytest.approx(
        0.63852, abs=1e-5
    )


def test_wilson():
    lo, hi = wilson(150, 300)
    assert lo < 0.5 < hi and hi - lo == pytest.approx(0.112, abs=0.002)
    assert wilson(0, 300)[0] == 0 and wilson(300, 300)[1] == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-minutes", "0"], "max_minutes must be a positive number"),
        (["--max-minutes", "nan"], "max_minutes must be a positive number"),
        (["--corpus", "stories-small"], "unrecognized arguments: --corpus"),
        (["--config", '{"corpus": "stories-small"}'], "rules fix corpus"),
        (["--config", '{"max_time": 9}'], "rules fix max_time"),
        (["--config", "no/such/file.json"], "no/such/file.json"),
        (["--d-model", "-3"], "d_model"),
        (["--idea", " "], "idea must be a short text"),
        (["--seed", "x"], "--seed"),
        (["--device", "nonsense"], "nonsense"),
    ],
)
def test_bad_options_one_line(args, message, tmp_path):
    p = run(*args, "--out", tmp_path / "run", "--results", tmp_path / "r.jsonl")
    assert message in one_error_line(p)
    assert not (tmp_path / "r.jsonl").exists()


def test_context_shorter_than_a_story(tmp_path):
    p = run("--context-length", "64", "--out", tmp_path / "run", "--results",
            tmp_path / "r.jsonl", "--no-progress")  # fmt: skip
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert "context_length 64 is too short" in p.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "r.jsonl").exists()


def test_appendix_shows_latest_record():
    """Appendix D's table is printed from benchmarks/results/speedrun.jsonl: its saved
    output names the latest run (re-execute nbs/93_tuning.ipynb after a speedrun)."""
    root = Path(__file__).resolve().parents[1]
    runs = read_records(root / "benchmarks" / "results" / "speedrun.jsonl")
    if not runs:
        pytest.skip("no speedrun recorded yet")
    nb = json.loads((root / "nbs" / "93_tuning.ipynb").read_text(encoding="utf-8"))
    shown = "".join(
        "".join(o.get("text", ""))
        for c in nb["cells"]
        for o in c.get("outputs", [])
    )
    last = max(r["when"] for r in runs)[:16].replace("T", " ")
    assert f"{len(runs)} runs, " in shown and f"the latest ran {last} UTC" in shown, (
        "nbs/93_tuning.ipynb does not show the latest speedrun: re-run it (python "
        "tools/execute_chapter.py nbs/93_tuning.ipynb; nbdev_clean --fname "
        "nbs/93_tuning.ipynb)"
    )
