"""Issue 35, nothing lost: a used run folder is never overwritten, Ctrl-C is one clean
stop however often it is pressed, and bad input is one line that names the file or
option. Real processes where a signal or a folder is involved."""

import json, signal, subprocess, sys, time

import pytest
import torch

from test_runs import (  # the fixtures `cache` and `tokens` too
    ENV, TINY, cache, one_error_line, run, tokens, train_on, wait_until)


def base(tokens, out) -> list:
    "`train` on the tiny token files into `out`."
    return train_on(tokens, "--vocab-size 64 --out-dir", out)


def train_losses(folder) -> list:
    "(step, loss) of every train record in the folder's log."
    lines = (folder / "log.jsonl").read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    return [(r["step"], r["loss"]) for r in recs if r["kind"] == "train"]


# --- a used run folder belongs to its run


def test_a_used_run_folder_is_refused_then_replaced_on_request(tmp_path, tokens):
    r = tmp_path / "r"
    assert run(*base(tokens, r), "--max-steps", "12").returncode == 0
    before = {n: (r / n).read_bytes() for n in ("checkpoint.pt", "log.jsonl")}
    # a new run (another seed, fewer steps) into the same folder: refused, nothing lost
    p = run(*base(tokens, r), "--max-steps", "6", "--seed", "7")
    assert p.returncode == 1
    line = one_error_line(p)
    assert f"{r} holds a run at step 12" in line
    assert "--resume auto" in line and "--overwrite" in line and "--out-dir" in line
    assert {n: (r / n).read_bytes() for n in before} == before
    # --overwrite replaces it and says so; the folder then holds the new run only
    p = run(*base(tokens, r), "--max-steps", "6", "--seed", "7", "--overwrite")
    assert p.returncode == 0, p.stderr
    assert f"replaced a run at step 12 in {r}" in p.stdout
    recs = [json.loads(line) for line in (r / "log.jsonl").read_text().splitlines()]
    assert recs[0]["kind"] == "config" and recs[0]["config"]["seed"] == 7
    assert [s for s, _ in train_losses(r)] == list(range(1, 7))
    # going on with it is allowed; --overwrite with --resume is a contradiction
    p = run(*base(tokens, r), "--max-steps", "8", "--seed", "7", "--resume", "auto")
    assert p.returncode == 0, p.stderr
    p = run(*base(tokens, r), "--max-steps", "8", "--overwrite", "--resume", "auto")
    assert p.returncode == 2 and "--overwrite starts afresh" in p.stderr


def test_another_runs_checkpoint_cannot_replace_a_used_folder(tmp_path, tokens):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(*base(tokens, a), "--max-steps", "6").returncode == 0
    assert run(*base(tokens, b), "--max-steps", "6").returncode == 0
    log = (b / "log.jsonl").read_text()
    p = run(*base(tokens, b), "--max-steps", "8", "--resume", a / "checkpoint.pt")
    assert p.returncode == 1 and f"{b} holds a run at step 6" in one_error_line(p)
    assert (b / "log.jsonl").read_text() == log


MAIN_KNOBS = dict(d_model=32, num_layers=1, num_heads=2, d_ff=64, batch_size=8)
MAIN_KNOBS |= dict(vocab_size=300, bpe_train_bytes=200_000, doc_eval_stories=20)
MAIN_KNOBS |= dict(warmup_steps=2, max_steps=8, eval_batches=2)


@pytest.mark.slow  # two main jobs and a train run: about 35 s
def test_the_main_job_runs_twice_and_never_takes_a_train_run(tmp_path, tokens, cache):
    (tmp_path / "tiny.json").write_text(json.dumps(MAIN_KNOBS))
    main = ["main", "--config", tmp_path / "tiny.json", "--out", tmp_path / "m"]
    main += ["--max-minutes", "0", "--samples", "1", "--validity-samples", "2"]
    main += ["--no-progress"]
    first = run(*main, env=cache)
    assert first.returncode == 0, first.stderr
    second = run(*main, env=cache)
    assert second.returncode == 0, second.stderr
    said = f"{tmp_path / 'm'} holds the previous main job (a run at step 8): replacing"
    assert said in second.stdout
    assert [s for s, _ in train_losses(tmp_path / "m")] == list(range(1, 9))
    assert json.loads((tmp_path / "m" / "summary.json").read_text())["steps"] == 8
    # a folder of a `train` run is never the main job's to replace
    t = tmp_path / "t"
    assert run(*base(tokens, t), "--max-steps", "4").returncode == 0
    log = (t / "log.jsonl").read_text()
    p = run(*main[:3], "--out", t, *main[5:], env=cache)
    assert p.returncode == 1
    assert "holds a run at step 4 that the main job did not make" in one_error_line(p)
    assert (t / "log.jsonl").read_text() == log


# --- Ctrl-C


def test_ctrl_c_twice_stops_cleanly_and_resumes_exactly(tmp_path, tokens):
    steps = ["--max-steps", "300"]
    cut = tmp_path / "cut"
    cmd = [sys.executable, "-m", "llm_tutorial.cli", *map(str, base(tokens, cut))]
    p = subprocess.Popen(
        cmd + steps, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        log = cut / "log.jsonl"  # until 20 steps are done
        wait_until(
            lambda: log.is_file() and '"step": 20,' in log.read_text(), 1200, 0.05)
        for pause in (0.0, 0.01, 0.02, 0.05, 0.1):  # pressed again and again
            time.sleep(pause)
            p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "Ctrl-C: stopping after this step" in err
    assert "interrupted: saved a checkpoint at step" in out, out + err
    stopped = train_losses(cut)[-1][0]
    assert 20 <= stopped < 300
    # the checkpoint resumes exactly: the same losses as a run never interrupted
    p = run(*base(tokens, cut), *steps, "--resume", "auto")
    assert p.returncode == 0, p.stderr
    straight = tmp_path / "straight"
    assert run(*base(tokens, straight), *steps).returncode == 0
    assert train_losses(cut) == train_losses(straight)


def test_ctrl_c_while_the_data_is_encoded(tmp_path):
    "The encoding workers leave Ctrl-C to the command: one line, no traceback each."
    env = {**ENV, "PYTHONUNBUFFERED": "1", "LLM_TUTORIAL_DATA": str(tmp_path / "c")}
    args = ["train", "--corpus", "stories", *TINY, "--out-dir", tmp_path / "r"]
    cmd = [sys.executable, "-m", "llm_tutorial.cli", *map(str, args)]
    p = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in p.stdout:  # the encoding starts right after the tokenizer
            if "trained a BPE tokenizer" in line:
                break
        for pause in (0.1, 0.2):
            time.sleep(pause)
            p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert "Traceback" not in err and "llm-tutorial train: interrupted" in err, err


def test_ctrl_c_while_the_command_starts(tmp_path):
    "Ctrl-C while `llm-tutorial train` imports its modules (torch): one line, 130."
    cmd = [sys.executable, "-m", "llm_tutorial.cli", "train", "--out-dir", tmp_path]
    p = subprocess.Popen(
        list(map(str, cmd)), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)  # fmt: skip
    time.sleep(0.5)  # the dispatcher is up (0.1 s); importing torch takes seconds
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert err.strip() == "llm-tutorial train: stopped (Ctrl-C)", err


def test_bpe_workers_leave_ctrl_c_to_the_parent():
    "A Ctrl-C that reaches BPE's counting workers kills none of them (no traceback)."
    code = """
import os, signal, collections
from llm_tutorial import bpe

def chunk(job):
    os.kill(os.getpid(), signal.SIGINT)  # what the terminal sends the whole group
    return collections.Counter({job[1]: 1})

class Bar:
    def update(self, n):
        pass

bpe._count_chunk = chunk
jobs = [(None, i, i + 1, None) for i in range(4)]
print(sorted(bpe._count_jobs(jobs, 2, Bar())))
"""
    p = subprocess.run(
        [sys.executable, "-c", code], env=ENV, capture_output=True, text=True,
        timeout=120)  # fmt: skip
    assert p.stdout.strip() == "[0, 1, 2, 3]" and "Traceback" not in p.stderr, p.stderr


# --- bad input: one line naming the file or option, before any work


def test_force_cannot_resume_into_another_shape(tmp_path, tokens):
    r = tmp_path / "r"
    assert run(*base(tokens, r), "--max-steps", "6").returncode == 0
    for knob, value, old in [("--d-model", "64", "32"), ("--vocab-size", "128", "64")]:
        again = ["--max-steps", "8", "--resume", "auto", "--force", knob, value]
        p = run(*base(tokens, r), *again)
        line = one_error_line(p)
        assert p.returncode == 1 and "even with --force" in line, line
        name = knob[2:].replace("-", "_")
        assert f"{name}: checkpoint {old}, this run {value}" in line
        assert "state_dict" not in line


def test_a_bad_checkpoint_to_resume_stops_before_the_data(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    cache = tmp_path / "cache"
    args = ["--corpus", "stories-small", *TINY, "--out-dir", tmp_path / "r"]
    p = run("train", *args, "--resume", bad, env={"LLM_TUTORIAL_DATA": str(cache)})
    assert (
        p.returncode == 1 and f"{bad} is not a readable checkpoint" in one_error_line(p)
    )
    assert not [f for f in cache.rglob("*") if f.is_file()], "no corpus, no tokens"


def test_bad_config_files_are_one_line(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    five = tmp_path / "five.json"
    five.write_text('{"out_dir": 5}')
    latin = tmp_path / "latin1.json"
    latin.write_bytes(b'{"corpus": "caf\xe9"}')
    for cfg, message in [
        (deep, f"config file {deep} is not valid JSON"),
        (five, "out_dir must be a string, got 5"),
        (latin, f"{latin} is not valid UTF-8")]:
        p = run("train", "--config", cfg, "--out-dir", tmp_path / "r")
        assert p.returncode == 2 and message in p.stderr, p.stderr
        assert "Traceback" not in p.stderr
        p = run("main", "--config", cfg, "--out", tmp_path / "m")
        assert p.returncode == 2 and message in p.stderr, p.stderr
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()


def test_bad_corpus_files_name_the_users_file(tmp_path, cache):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    p = run("train", "--corpus", empty, "--out-dir", tmp_path / "r", env=cache)
    assert p.returncode == 2 and f"corpus file {empty} is empty" in p.stderr
    latin = tmp_path / "latin1.txt"
    latin.write_bytes(b"The caf\xe9 was open.\n" * 2_000)
    p = run("train", "--corpus", latin, *TINY, "--out-dir", tmp_path / "r", env=cache)
    assert p.returncode == 1 and f"{latin} is not valid UTF-8" in one_error_line(p)


def test_main_out_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    p = run("main", "--out", f, "--max-minutes", "0.1")
    line = one_error_line(p)
    assert p.returncode == 1 and f"the output folder {f} is a file" in line
    assert "--out" in line


def test_print_config_needs_no_data(tmp_path):
    p = run("train", "--preset", "cs336-owt", "--print-config")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["corpus"] == "data/owt_train.txt"
    p = run("train", "--preset", "cs336-owt", "--out-dir", tmp_path / "r")
    assert p.returncode == 2 and "data/owt_train.txt" in p.stderr


# --- the library


def test_model_config_rejects_a_bad_rope_theta():
    from llm_tutorial.model import ModelConfig

    for theta in (float("nan"), -1.0, 0.0, float("inf")):
        with pytest.raises(ValueError, match="rope_theta must be positive and finite"):
            ModelConfig(100, 32, 64, 2, 4, 192, rope_theta=theta)


def test_tokenizer_errors_say_where(tmp_path):
    from llm_tutorial.datasets import gpt2_files
    from llm_tutorial.tokenizer import Tokenizer

    tok = Tokenizer.from_files(*gpt2_files(), ["<|endoftext|>"])
    text = "Hello world"
    assert tok.decode(torch.tensor(tok.encode(text))) == text  # a regression
    assert tok.decode(torch.tensor([tok.encode(text)])) == text
    bad = "Hello" + chr(0xDCE9) + " world"
    for enc in (tok.encode, tok.encode_ordinary):
        with pytest.raises(ValueError, match="lone surrogate .* at position 5"):
            enc(bad)
    vocab = tmp_path / "vocab.json"
    vocab.write_text('{"a": 0, "b": "one"}', encoding="utf-8")
    (tmp_path / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{vocab} is not a valid vocab.json"):
        Tokenizer.from_files(vocab, tmp_path / "merges.txt")


def test_cs336_adapters_refuse_bad_arguments():
    from llm_tutorial.cs336 import run_rmsnorm, run_transformer_lm

    ids = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"TransformerLM takes CS336's names.*missing"):
        run_transformer_lm(50, 6, 8, 2, 2, 16, 1e4, {}, ids)
    x = torch.randn(2, 5)
    with pytest.raises(ValueError, match="eps must be positive"):
        run_rmsnorm(5, -1.0, torch.ones(5), x)
