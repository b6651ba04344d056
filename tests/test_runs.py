"""Run folders under real processes: `train` then `generate` with no other option, two
runs on one folder, Ctrl-C, resuming another run's checkpoint, a finished run, bad
input that must give one `error:` line. Commands are forked from a process that has
imported torch (tests/forkrun.py); Ctrl-C and kill use new processes."""

import atexit, json, os, re, signal, subprocess, sys, time

import numpy as np
import pytest

from forkrun import ForkRunner

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
TINY = (  # a model and run small enough for seconds of training
    "--vocab-size 300 --context-length 32 --d-model 32 --num-layers 1 --num-heads 2 "
    "--d-ff 64 --batch-size 8 --warmup-steps 2 --eval-batches 2 --eval-interval 0 "
    "--checkpoint-interval 0 --no-progress --device cpu --bpe-train-bytes 200000 "
    "--doc-eval-stories 20"
).split()


def words(more) -> list:
    "Arguments: a string is split at spaces (\"--vocab-size 64 --max-steps 4\")."
    return [w for m in more for w in (m.split() if isinstance(m, str) else [m])]


def train_on(tokens, *more) -> list:
    "`train` on the tiny token files with TINY's settings, then `more` (`words`)."
    data = ["--train-tokens", tokens / "train.npy", "--val-tokens", tokens / "val.npy"]
    return ["train", *data, *TINY, *words(more)]


def train_corpus(corpus, *more) -> list:
    "`train` on `corpus` (a name or a text file) with TINY's settings, then `more`."
    return ["train", "--corpus", corpus, *TINY, *words(more)]


def wait_until(ok, tries: int = 600, pause: float = 0.1) -> None:
    "Poll `ok()` until it holds (at most `tries` times)."
    for _ in range(tries):
        if ok():
            return
        time.sleep(pause)


_forker = []  # this process's ForkRunner, started by the first command


def run(*args, env=None, timeout=600):
    "`llm-tutorial ARGS`: forked from a server that has imported torch (tests/forkrun)."
    args, env = list(map(str, args)), {**ENV, **(env or {})}
    if os.environ.get("LLM_TUTORIAL_SLOW"):  # --slow: every command a new process
        cmd = [sys.executable, "-m", "llm_tutorial.cli", *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=timeout)  # fmt: skip
    if not _forker:
        _forker.append(ForkRunner(ENV))
        atexit.register(_forker[0].close)
    return _forker[0].run(args, env, timeout)


def one_error_line(p):
    """The process failed with exactly one `error:` line and no traceback; returns that
    line."""
    assert "Traceback" not in p.stderr, p.stderr
    lines = [l for l in p.stderr.splitlines() if "error:" in l]
    assert len(lines) == 1, p.stderr
    return lines[0]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return {"LLM_TUTORIAL_DATA": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    d = tmp_path_factory.mktemp("tokens")
    seq = np.array([(i * 7 + i // 13) % 50 for i in range(20_000)], dtype=np.uint16)
    np.save(d / "train.npy", seq[:16_000])
    np.save(d / "val.npy", seq[16_000:])
    return d


def test_train_then_generate_story_corpus(tmp_path, cache):
    p = run(*train_corpus("stories-small", "--max-steps 20 --out-dir", tmp_path / "r"),
            env=cache)
    assert p.returncode == 0, p.stderr
    assert "Warning" not in p.stderr, p.stderr  # the loss plot of a 32-token context
    assert "no whole-story validation (stories > 32 tokens)" in p.stdout, p.stdout
    assert (tmp_path / "r" / "vocab.json").is_file() and (
        tmp_path / "r" / "merges.txt").is_file()
    g = run(
        "generate", "--checkpoint", tmp_path / "r" / "checkpoint.pt",
        "--max-new-tokens", "10", "--seed", "0")
    assert g.returncode == 0, g.stderr
    assert g.stdout.strip()


def test_train_then_generate_text_file(tmp_path, cache):
    text = tmp_path / "my text.txt"
    text.write_text(
        "The cat sat on the mat. The dog sat on the log.\n" * 400, encoding="utf-8")
    p = run(*train_corpus(text, "--max-steps 10 --out-dir", tmp_path / "r"), env=cache)
    assert p.returncode == 0, p.stderr
    g = run(
        "generate", "--checkpoint", tmp_path / "r" / "checkpoint.pt", "--prompt",
        "The cat", "--max-new-tokens", "8", "--seed", "0")
    assert g.returncode == 0, g.stderr
    assert g.stdout.startswith("The cat")


@pytest.mark.slow  # the story-corpus and text-file round trips run by default
def test_train_then_generate_token_files(tmp_path, tokens, cache):
    base = train_on(tokens, "--vocab-size 300 --max-steps 10")
    # token files with their tokenizer: the tokenizer travels into the run folder
    first = run(
        *train_corpus("stories-small", "--max-steps 3 --out-dir", tmp_path / "tok"),
        env=cache)
    assert first.returncode == 0, first.stderr
    p = run(
        *base, "--tokenizer", tmp_path / "tok", "--out-dir", tmp_path / "r", env=cache)
    assert p.returncode == 0, p.stderr
    g = run(
        "generate", "--checkpoint", tmp_path / "r" / "checkpoint.pt",
        "--max-new-tokens", "5", "--seed", "0")
    assert g.returncode == 0, g.stderr
    # token files without a tokenizer: generate says what to pass
    p = run(*base, "--out-dir", tmp_path / "bare", env=cache)
    assert p.returncode == 0, p.stderr
    g = run("generate", "--checkpoint", tmp_path / "bare" / "checkpoint.pt")
    assert (
        g.returncode == 2 and "no tokenizer" in g.stderr and "--tokenizer" in g.stderr)


def test_generate_refuses_another_tokenizer(tmp_path, cache):
    a = run(*train_corpus("stories-small", "--max-steps 3 --out-dir", tmp_path / "a"),
            env=cache)
    text = tmp_path / "other.txt"
    text.write_text(
        "Completely different words here, quite unlike the stories.\n" * 300,
        encoding="utf-8")
    b = run(*train_corpus(text, "--max-steps 3 --out-dir", tmp_path / "b"), env=cache)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    g = run(
        "generate", "--checkpoint", tmp_path / "a" / "checkpoint.pt", "--tokenizer",
        tmp_path / "b")
    assert g.returncode == 2 and "was trained with tokenizer" in g.stderr, g.stderr
    g = run(
        "generate", "--checkpoint", tmp_path / "a" / "checkpoint.pt", "--tokenizer",
        tmp_path / "b", "--force", "--max-new-tokens", "3", "--seed", "0")
    assert g.returncode == 0, g.stderr


def test_two_runs_one_folder(tmp_path, tokens):
    args = train_on(
        tokens, "--vocab-size 64 --max-steps 100000 --out-dir", tmp_path / "r")
    first = subprocess.Popen(
        [sys.executable, "-m", "llm_tutorial.cli", *map(str, args)], env=ENV,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = tmp_path / "r" / ".lock"  # wait until the first run holds the folder
        wait_until(
            lambda: lock.is_file() and lock.read_text().strip() == str(first.pid))
        second = run(*args, "--max-steps", "5")
        assert second.returncode == 1
        assert f"another run (process {first.pid}) is using" in one_error_line(second)
        # Ctrl-C once it trains: a checkpoint, exit 130, no final line
        log = tmp_path / "r" / "log.jsonl"
        wait_until(lambda: log.is_file() and '"kind": "train"' in log.read_text())
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=120)
        assert first.returncode == 130, err
        assert "interrupted: saved a checkpoint" in out + err and "final:" not in out
        assert (tmp_path / "r" / "checkpoint.pt").is_file()
    finally:
        if first.poll() is None:
            first.kill()
    # the lock went with its process
    third = run(*args, "--max-steps", "3", "--resume", "auto")
    assert "another run" not in third.stderr


def test_killed_run_leaves_no_lock(tmp_path, tokens):
    args = train_on(
        tokens, "--vocab-size 64 --max-steps 100000 --out-dir", tmp_path / "r")
    first = subprocess.Popen(
        [sys.executable, "-m", "llm_tutorial.cli", *map(str, args)], env=ENV,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = tmp_path / "r" / ".lock"
    wait_until(lambda: lock.is_file() and lock.read_text().strip() == str(first.pid))
    first.kill()  # kill -9: the lock file stays, the lock does not
    first.wait()
    # (the folder may hold the killed run's log: --overwrite replaces it)
    again = run(*args, "--max-steps", "3", "--overwrite")
    assert again.returncode == 0, again.stderr


def test_resume_checks_the_run(tmp_path, tokens):
    base = train_on(tokens, "--vocab-size 64 --out-dir", tmp_path / "r")
    assert run(*base, "--max-steps", "6").returncode == 0
    # another model shape: one line naming the field and both values
    p = run(*base, "--max-steps", "8", "--resume", "auto", "--d-model", "64")
    assert p.returncode == 1
    assert "d_model: checkpoint 32, this run 64" in one_error_line(p)
    # another learning rate is another run too, but the number of steps may change
    p = run(*base, "--max-steps", "8", "--resume", "auto", "--lr", "0.5")
    assert p.returncode == 1 and "lr: checkpoint" in one_error_line(p)
    p = run(*base, "--max-steps", "8", "--resume", "auto")
    assert p.returncode == 0, p.stderr
    # a finished run: nothing to do, the log gains no record
    log = (tmp_path / "r" / "log.jsonl").read_text()
    p = run(*base, "--max-steps", "8", "--resume", "auto")
    assert p.returncode == 0 and "raise --max-steps" in p.stdout + p.stderr
    assert (tmp_path / "r" / "log.jsonl").read_text() == log


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-steps", "3"], "warmup_steps=20 must be below the run's 3 steps"),
        (["--grad-clip", "nan"], "grad_clip must be a finite number"),
        (["--rope-theta", "0"], "rope_theta must be"),  # ModelConfig's check
        (["--min-lr", "nan"], "min_lr must be a finite number"),
        (["--lr", "nan"], "lr must be a finite number"),
        (["--max-time", "nan"], "max_time must be a finite number"),
        (["--weight-decay", "-1"], "weight_decay must be >= 0"),
        (["--eps", "-1"], "eps must be positive"),
        (["--vocab-size", "10000000"], "at most 65,536"),
        (["--corpus", "no-such-corpus"], "no-such-corpus"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path, args, message):
    p = run("train", *args, "--out-dir", tmp_path / "r")
    assert p.returncode == 2, p.stderr
    assert message in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "r").exists(), "nothing is written for a usage error"


def test_runtime_errors_are_one_line(tmp_path, tokens):
    (tmp_path / "file").write_text("x")
    base = train_on(tokens, "--vocab-size 64 --max-steps 4")
    p = run(*base, "--out-dir", tmp_path / "file")
    assert p.returncode == 1 and "is a file, not a folder" in one_error_line(p)
    p = run(*base, "--out-dir", tmp_path / "file" / "sub")
    assert p.returncode == 1 and "the run folder" in one_error_line(p)
    p = run(*base, "--out-dir", tmp_path / "r", "--device", "cuda:7")
    if p.returncode:  # no such device here
        assert "cuda" in one_error_line(p)
    p = run(*base, "--out-dir", tmp_path / "r2", "--resume", tmp_path / "nope.pt")
    assert p.returncode == 1 and "nope.pt" in one_error_line(p)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.arange(10, dtype=np.uint16))
    p = run(
        "train", "--train-tokens", bad, "--val-tokens", bad, *TINY, "--out-dir",
        tmp_path / "r3")
    assert p.returncode == 1 and "context_length" in one_error_line(p)
    p = run(*base, "--out-dir", tmp_path / "r4", "--debug", "--resume",
            tmp_path / "nope.pt")
    assert p.returncode == 1 and "Traceback" in p.stderr  # --debug shows it


def test_generate_bad_input(tmp_path, tokens):
    base = train_on(tokens, "--vocab-size 300 --max-steps 3 --out-dir", tmp_path / "r")
    assert run(*base).returncode == 0
    from llm_tutorial.corpus import EOT
    from llm_tutorial.utf8 import save_vocab_merges

    vocab = {i: bytes([i]) for i in range(256)}
    vocab[256] = EOT.encode()
    save_vocab_merges(
        vocab, [], tmp_path / "r" / "vocab.json", tmp_path / "r" / "merges.txt")
    ck = tmp_path / "r" / "checkpoint.pt"
    p = run("generate", "--checkpoint", ck, "--prompt", "caf\udce9")  # not UTF-8 text
    assert (
        p.returncode == 2 and "--prompt is not valid UTF-8" in p.stderr
        and "Traceback" not in p.stderr)
    p = run("generate", "--checkpoint", ck, "--device", "cuda:7")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    p = run(
        "generate", "--checkpoint", ck, "--temperature", "1e-45", "--max-new-tokens",
        "3")
    assert p.returncode == 0, p.stderr


def test_main_bad_config(tmp_path):
    for text, message in [
        ("{not json", "not valid JSON"), ("[1, 2]", "must hold a JSON object")]:
        cfg = tmp_path / "c.json"
        cfg.write_text(text)
        p = run("main", "--config", cfg, "--out", tmp_path / "m")
        assert p.returncode == 2 and message in p.stderr, p.stderr
        assert "Traceback" not in p.stderr
    p = run("main", "--temperature", "-1", "--out", tmp_path / "m")
    assert p.returncode == 2 and "temperature" in p.stderr
    p = run("main", "--device", "nodevice", "--out", tmp_path / "m")
    assert p.returncode == 1 and "device 'nodevice'" in one_error_line(p)
    assert not (tmp_path / "m").exists(), "refused before any work"


def test_main_job_when_the_budget_runs_out(tmp_path, cache):
    """A budget too small for the job: training gets its minimum, sampling no time at
    all; the log says so up front and at the end, and explains the short run."""
    knobs = dict(d_model=32, num_layers=1, num_heads=2, d_ff=64, batch_size=8)
    knobs |= dict(vocab_size=300, bpe_train_bytes=200_000, doc_eval_stories=20)
    knobs |= dict(warmup_steps=2, max_steps=100_000, eval_batches=2)
    (tmp_path / "tiny.json").write_text(json.dumps(knobs))
    env = {k: v for k, v in {**ENV, **cache}.items() if k != "OMP_NUM_THREADS"}
    args = ["main", "--config", tmp_path / "tiny.json", "--out", tmp_path / "m"]
    args += ["--max-minutes", "0.05", "--validity-samples", "8", "--no-progress"]
    cmd = [sys.executable, "-m", "llm_tutorial.cli", *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr
    first = p.stdout.splitlines()[0]
    assert first.startswith("== main job: at most 0.1 min for all of it"), first
    assert re.search(r"threads: \d+ \(one per idle core: [\d.]+ of \d+ idle\)", first)
    assert "the time budget ran out: sampled 0 of 8 stories" in p.stdout
    assert "of the 100,000 planned training steps" in p.stdout
    assert "--max-minutes" in p.stdout.splitlines()[-1]
    s = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert s["stories"] == 0 and "validity" not in s
    assert 0 < s["steps"] < s["planned_steps"] == 100_000
    assert (tmp_path / "m" / "loss.png").stat().st_size > 0


def test_short_run_has_a_loss_curve(tmp_path, tokens):
    "By default a run evaluates every tenth of its steps: 40 steps, 11 evaluations."
    knobs = list(TINY)
    del knobs[knobs.index("--eval-interval") : knobs.index("--eval-interval") + 2]
    p = run(
        "train", "--train-tokens", tokens / "train.npy", "--val-tokens",
        tokens / "val.npy", *knobs, "--vocab-size", "64", "--max-steps", "40",
        "--out-dir", tmp_path / "r")
    assert p.returncode == 0, p.stderr
    log = (tmp_path / "r" / "log.jsonl").read_text().splitlines()
    log = [json.loads(line) for line in log]
    assert [r["step"] for r in log if r["kind"] == "eval"] == list(range(0, 41, 4))
    assert "threads: 1 (OMP_NUM_THREADS)" in p.stdout


def test_full_disk_keeps_the_old_checkpoint(tmp_path, tokens, monkeypatch):
    """A checkpoint that cannot be written (here: torch.save failing as on a full disk)
    is one clear OSError."""
    import llm_tutorial.train as T

    cfg = T.TrainConfig(
        vocab_size=64, context_length=32, d_model=32, num_layers=1, num_heads=2,
        d_ff=64, batch_size=8, max_steps=4, warmup_steps=1, eval_batches=1,
        checkpoint_interval=2, progress=False, device="cpu",
        out_dir=str(tmp_path / "r"))
    data = T.TrainData(np.load(tokens / "train.npy"), np.load(tokens / "val.npy"))
    real, calls = T.save_checkpoint, []

    def full_after_first(*args, **kw):
        calls.append(args[2])
        if len(calls) > 1:
            raise RuntimeError(
                "[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")
        return real(*args, **kw)

    monkeypatch.setattr(T, "save_checkpoint", full_after_first)
    with pytest.raises(
        OSError, match="could not write the checkpoint .*is the disk full"):
        T.train(cfg, data=data)
    # the step-2 checkpoint is intact
    ck = T.read_checkpoint(tmp_path / "r" / "checkpoint.pt")
    assert ck["iteration"] == 2
    with T.run_lock(tmp_path / "r"):
        pass  # and the folder is free again


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder on a read-only bind mount (even root cannot write there); skips where
    mounting is not allowed."""
    src, mnt = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    mnt.mkdir()
    if subprocess.run(
        ["mount", "--bind", str(src), str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        remount = ["mount", "-o", "remount,bind,ro", str(mnt)]
        if subprocess.run(remount, capture_output=True).returncode:
            pytest.skip("cannot remount read-only here")
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_read_only_folders_stop_before_any_work(tmp_path, tokens, read_only_dir):
    p = run(*train_on(tokens, "--max-steps 4 --vocab-size 64 --out-dir",
                      read_only_dir / "run"))
    assert p.returncode == 1 and "cannot write in the run folder" in one_error_line(p)
    p = run(*train_corpus("stories-small", "--max-steps 4 --out-dir", tmp_path / "r"),
            env={"LLM_TUTORIAL_DATA": str(read_only_dir / "cache")})
    line = one_error_line(p)
    assert (
        p.returncode == 1 and "the data cache" in line and "LLM_TUTORIAL_DATA" in line)
    assert not (tmp_path / "r" / "log.jsonl").exists(), "stopped before any work"
