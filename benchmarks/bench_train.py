"""Throughput of `train()` against a bare loop over the same model (chapter 09).

The bare loop is the minimum any training needs: forward, cross_entropy, backward,
clipping, AdamW step on batches prepared in advance. `train()` adds data loading
(get_batch per step), the schedule, the JSONL log, the progress bar and eval
scheduling. Overhead = 1 - train tokens/s / bare tokens/s (target: <= 5%), with
train()'s time taken from the start of its first step to the log record of its last
one (its JSONL log); the whole call, with model creation, the evaluations at start
and end (1 batch) and the final checkpoint, is reported too.

python benchmarks/bench_train.py [--steps 60] [--repeat 3]"""

import argparse, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record, best_of
from llm_tutorial.config import TrainConfig
from llm_tutorial.data import TrainData
from llm_tutorial.train import train
from llm_tutorial.model import TransformerLM
from llm_tutorial.optim import AdamW, cross_entropy, gradient_clipping
from llm_tutorial.data import get_batch


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cfg0 = TrainConfig()  # the book's default model shape and batch
    out = Path(tempfile.mkdtemp())
    cfg = cfg0.replace(
        max_steps=args.steps,
        eval_interval=0,
        eval_batches=1,
        doc_eval_stories=0,
        checkpoint_interval=0,
        out_dir=str(out / "run"),
        device="cpu",
        warmup_steps=5,
    )
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, cfg.vocab_size, 2_000_000, dtype=np.uint16)
    data = TrainData(tokens[:1_900_000], tokens[1_900_000:])
    tok_per_step = cfg.batch_size * cfg.context_length

    def bare():
        torch.manual_seed(cfg.seed)
        model = TransformerLM.from_config(cfg.model_config())
        opt = AdamW(
            model.parameters(),
            lr=cfg.lr,
            betas=(cfg.beta1, cfg.beta2),
            eps=cfg.eps,
            weight_decay=cfg.weight_decay,
        )
        batches = [
            get_batch(
                data.train, cfg.batch_size, cfg.context_length, "cpu", generator=s
            )
            for s in range(args.steps)
        ]
        t0 = time.perf_counter()
        for x, y in batches:
            loss = cross_entropy(model(x), y)
            loss.backward()
            gradient_clipping(model.parameters(), cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
        loss.item()
        return time.perf_counter() - t0

    def full():
        """(wall time of the loop's steps, wall time of the whole call): the loop from
        the start of step 1 to the log record of the last step."""
        t0 = time.perf_counter()
        log = train(cfg, data=data).log
        total = time.perf_counter() - t0
        tr = [r for r in log if r["kind"] == "train"]
        first_start = tr[0]["time"] - tok_per_step / tr[0]["tokens_per_s"]
        return tr[-1]["time"] - first_start, total

    t_bare, t_train, t_call = [], [], []
    for _ in range(args.repeat):  # interleaved, so machine load hits both alike
        t_bare.append(bare())
        loop, call = full()
        t_train.append(loop)
        t_call.append(call)
    bare_tps = args.steps * tok_per_step / min(t_bare)
    train_tps = args.steps * tok_per_step / min(t_train)
    call_tps = args.steps * tok_per_step / min(t_call)
    res = {
        "steps": args.steps,
        "batch_size": cfg.batch_size,
        "context_length": cfg.context_length,
        "d_model": cfg.d_model,
        "num_layers": cfg.num_layers,
        "vocab_size": cfg.vocab_size,
        "bare_tokens_per_s": round(bare_tps),
        "train_tokens_per_s": round(train_tps),
        "overhead_pct": round(100 * (1 - train_tps / bare_tps), 2),
        "train_call_tokens_per_s": round(call_tps),
        "call_overhead_pct": round(100 * (1 - call_tps / bare_tps), 2),
        "bare_s": [round(t, 3) for t in t_bare],
        "train_loop_s": [round(t, 3) for t in t_train],
        "train_call_s": [round(t, 3) for t in t_call],
        "torch_threads": torch.get_num_threads(),
    }
    print(
        f"bare loop: {bare_tps:,.0f} tokens/s   train() loop: {train_tps:,.0f} "
        f"tokens/s   overhead: {res['overhead_pct']:.1f}%  "
        f"(best of {args.repeat}, {args.steps} steps of {tok_per_step} tokens)\n"
        "whole train() call incl. start-up, first/last evaluation and checkpoint: "
        f"{call_tps:,.0f} tokens/s ({res['call_overhead_pct']:.1f}%)"
    )
    record("bench_train", res)


if __name__ == "__main__":
    main()
