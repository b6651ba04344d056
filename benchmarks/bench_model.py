"""Training-step speed of the TinyStories model (run by hand: `python
benchmarks/bench_model.py`).

At the CS336 TinyStories config (vocab 10k, ctx 256, d_model 512, 4 layers, 16 heads,
d_ff 1344), batch 8, float32, one forward + backward + torch.optim.AdamW step, in the
same run:
  (a) a model made of PyTorch built-ins (nn.Embedding, nn.Linear, nn.RMSNorm,
      F.scaled_dot_product_attention, F.silu; RoPE has no built-in, so it uses chapter
      04's),
  (b) the plain `TransformerLM` of chapters 04-05 (every layer as its formula reads,
      gradients by autograd),
  (c) the same model after chapter 11's `speed_up`, its twins
      (F.scaled_dot_product_attention, F.rms_norm, F.silu, the hand-written embedding
      backward, and RoPE as one complex multiply, `rope_complex`; the built-ins model
      keeps chapter 04's real-valued RoPE, so that is where the fast path can beat it).
All three start from the same weights (the first losses are printed and must agree).
Steps are interleaved (round-robin, `--rounds` rounds of `--steps` steps after
`--warmup` warm-up steps, the order rotating from round to round so that no model always
runs first) so that machine noise hits every model alike; each model's time is its best
round, and the ratios are also given round by round (median and range), which shows how
much of a difference is noise. A shared host moves single rounds by +-20%, more than the
few percent between the models, so the per-round ratios are also summarised by their
geometric mean with a 95% confidence interval (a t-interval on the mean log ratio) and
the share of rounds the model was faster: with 20 rounds or more, a target counts as met
when the interval lies above it. Fewer rounds give no verdict: the host's load drifts
over seconds, so neighbouring rounds are not independent, and a handful of them can
agree by chance (three rounds once gave a model 0.83-0.86x where 100 rounds gave
0.96-0.97x). Target: (c) >= 1.0x (a); the plain model's ratio (b) is reported with no
target (its job is to be read). Also: achieved GFLOP/s (the standard count: matmul FLOPs
of forward + backward = 3x `forward_flops`, full n² attention) and its fraction of the
matmul ceiling, measured as the best GFLOP/s of a big float32 matmul (timed before the
rounds and once in every round, so that a busy moment of the host cannot lower it)."""

import argparse, math, os, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch
import torch.nn as nn
import torch.nn.functional as F
from benchmarks.common import record, best_of
from llm_tutorial.layers import RotaryPositionalEmbedding
from llm_tutorial.fast import speed_up
from llm_tutorial.model import ModelConfig, TransformerLM, forward_flops

TINYSTORIES = ModelConfig(
    vocab_size=10000,
    context_length=256,
    d_model=512,
    num_layers=4,
    num_heads=16,
    d_ff=1344,
)


class BuiltinBlock(nn.Module):
    """Pre-norm block from PyTorch built-ins, with the parameter names of our
    TransformerBlock."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        d, self.h = c.d_model, c.num_heads
        self.attn = nn.Module()
        for p in ("q_proj", "k_proj", "v_proj", "output_proj"):
            setattr(self.attn, p, nn.Linear(d, d, bias=False))
        self.rope = RotaryPositionalEmbedding(c.rope_theta, c.d_k, c.context_length)
        self.ffn = nn.Module()
        self.ffn.w1, self.ffn.w2, self.ffn.w3 = (
            nn.Linear(d, c.d_ff, bias=False),
            nn.Linear(c.d_ff, d, bias=False),
            nn.Linear(d, c.d_ff, bias=False),
        )
        self.ln1, self.ln2 = nn.RMSNorm(d, eps=1e-5), nn.RMSNorm(d, eps=1e-5)

    def forward(self, x, pos):
        a, y = self.attn, self.ln1(x)
        q, k, v = (
            p(y).unflatten(-1, (self.h, -1)).transpose(1, 2)
            for p in (a.q_proj, a.k_proj, a.v_proj)
        )
        q, k = self.rope(q, pos), self.rope(k, pos)
        x = x + a.output_proj(
            F.scaled_dot_product_attention(q, k, v, is_causal=True)
            .transpose(1, 2)
            .flatten(2)
        )
        y = self.ln2(x)
        return x + self.ffn.w2(F.silu(self.ffn.w1(y)) * self.ffn.w3(y))


class BuiltinLM(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.token_embeddings = nn.Embedding(c.vocab_size, c.d_model)
        self.layers = nn.ModuleList(BuiltinBlock(c) for _ in range(c.num_layers))
        self.ln_final, self.lm_head = (
            nn.RMSNorm(c.d_model, eps=1e-5),
            nn.Linear(c.d_model, c.vocab_size, bias=False),
        )

    def forward(self, ids):
        pos, x = torch.arange(ids.shape[1]), self.token_embeddings(ids)
        for layer in self.layers:
            x = layer(x, pos)
        return self.lm_head(self.ln_final(x))


def matmul_ceiling(n: int = 2048, repeat: int = 5) -> float:
    "Best float32 GFLOP/s of an (n x n) @ (n x n) matmul."
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    return 2 * n**3 / best_of(lambda: a @ b, repeat) / 1e9


# exact, from tables
_T975_SMALL = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447}


def t975(df: int) -> float:
    """Two-sided 95% quantile of Student's t with `df` degrees of freedom: tabled up to
    6, then a Cornish-Fisher expansion around z = 1.96 (within 0.01 of the exact
    value from df 7: 2.225 vs 2.228 at df 10)."""
    if df in _T975_SMALL:
        return _T975_SMALL[df]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def geometric_mean_ci(ratios) -> tuple[float, float, float]:
    """Geometric mean of positive `ratios` and its 95% confidence interval (a t-interval
    on the mean of the logs)."""
    logs = [math.log(r) for r in ratios]
    n, m = len(logs), statistics.fmean(logs)
    if n < 2:
        return math.exp(m), 0.0, math.inf
    half = t975(n - 1) * statistics.stdev(logs) / math.sqrt(n)
    return math.exp(m), math.exp(m - half), math.exp(m + half)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=1, help="steps per model per round")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: torch's default)"
    )
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    c, B = TINYSTORIES, args.batch
    torch.manual_seed(0)
    ours = TransformerLM.from_config(c)
    models = {
        "builtins": BuiltinLM(c),
        "plain": ours,
        "fast": TransformerLM.from_config(c),
    }
    for name in ("builtins", "fast"):
        models[name].load_state_dict(ours.state_dict())
    speed_up(models["fast"])
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
    ids = torch.randint(0, c.vocab_size, (B, c.context_length + 1))
    x, y = ids[:, :-1], ids[:, 1:]

    def step(name):
        loss = F.cross_entropy(models[name](x).flatten(0, 1), y.flatten())
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()
        return loss.item()

    first = {k: step(k) for k in models}  # also the warm-up's first step
    print(
        "first losses (same weights, must agree):",
        {k: round(v, 5) for k, v in first.items()},
    )
    assert max(first.values()) - min(first.values()) < 1e-3, first
    for _ in range(args.warmup - 1):
        for k in models:
            step(k)
    best, rounds = {k: float("inf") for k in models}, {k: [] for k in models}
    names, ceiling = list(models), matmul_ceiling()
    for r in range(args.rounds):
        # rotate the order: no model always runs first
        for k in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(k)
            rounds[k].append((time.perf_counter() - t0) / args.steps)
            best[k] = min(best[k], rounds[k][-1])
        # in every round too: the best of a quiet moment
        ceiling = max(ceiling, matmul_ceiling(repeat=1))
    tokens = B * c.context_length
    # forward + backward (2x forward)
    step_flops = 3 * forward_flops(c, c.context_length, B)["total"]
    res = {
        "config": {k: v for k, v in vars(c).items()},
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "batch": B,
        "dtype": "float32",
        "threads": torch.get_num_threads(),
        "steps_timed": args.steps * args.rounds,
        "matmul_ceiling_gflops": round(ceiling, 1),
        "train_step_gflop": round(step_flops / 1e9, 1),
    }
    print(
        f"TinyStories config, batch {B} x {c.context_length}, float32, "
        f"{torch.get_num_threads()} threads; "
        f"matmul ceiling {ceiling:.0f} GFLOP/s; {step_flops / 1e9:.0f} GFLOP per "
        f"training step; load average {os.getloadavg()[0]:.1f}"
    )
    for k, t in best.items():
        tps, gflops = tokens / t, step_flops / t / 1e9
        res[k] = {
            "step_s": round(t, 4),
            "tokens_per_s": round(tps, 1),
            "gflops": round(gflops, 1),
            "frac_of_ceiling": round(gflops / ceiling, 3),
        }
        print(
            f"  {k:9} {t * 1000:8.1f} ms/step {tps:9.0f} tokens/s {gflops:7.1f} "
            f"GFLOP/s ({gflops / ceiling:5.1%} of ceiling)"
            f"  {best['builtins'] / t:5.2f}x built-ins"
        )
    res["plain_vs_builtins"] = round(best["builtins"] / best["plain"], 3)
    res["fast_vs_builtins"] = round(best["builtins"] / best["fast"], 3)
    # the same ratio round by round (each round runs the models back to back)
    for k, target in (("plain", None), ("fast", 1.0)):
        per_round = sorted(b / t for b, t in zip(rounds["builtins"], rounds[k]))
        gmean, lo, hi = geometric_mean_ci(per_round)
        faster = sum(r > 1 for r in per_round) / len(per_round)
        res[f"{k}_vs_builtins_rounds"] = {
            "median": round(statistics.median(per_round), 3),
            "min": round(per_round[0], 3),
            "max": round(per_round[-1], 3),
            "geomean": round(gmean, 3),
            "ci95": [round(lo, 3), round(hi, 3)],
            "share_faster": round(faster, 3),
        }
        if target is None:
            verdict = "no target"
        elif len(per_round) < 20:
            verdict = "too few rounds to tell (use --rounds 50 or more)"
        else:
            verdict = (
                "met"
                if lo >= target
                else ("not met" if hi < target else "not resolved by this run")
            )
        print(
            f"  {k} / built-ins round by round: median "
            f"{statistics.median(per_round):.2f}x, range "
            f"{per_round[0]:.2f}-{per_round[-1]:.2f}x over {len(per_round)} rounds; "
            f"geometric mean {gmean:.3f}x, 95% CI {lo:.3f}-{hi:.3f}x; faster than the "
            f"built-ins in {faster:.0%} of rounds -> "
            f"{f'target >= {target}: ' if target else ''}{verdict}"
        )
    print(
        f"plain / built-ins = {res['plain_vs_builtins']:.2f}x best-of (no target); "
        f"fast / built-ins = {res['fast_vs_builtins']:.2f}x best-of (target >= 1.0)"
    )
    if not args.no_record:
        record("bench_model", res)


if __name__ == "__main__":
    main()
