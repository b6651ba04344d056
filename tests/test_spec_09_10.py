"""The spec tests of chapters 09 (evaluation, the training step), 10 (sampling) and 10c
(the dispatcher), tested both ways: typical wrong versions of each unit are rejected
with a message that names the bug (the key words below), correct versions written
unlike the book's pass; so does the book's own, and the exercise's stub fails."""

import pytest

from llm_tutorial.exercises import grade_many
from spec_cases import check_both_ways, versions

GEN, EVAL, CLI = "10_generate.ipynb", "09b_evaluate.ipynb", "10c_cli.ipynb"
TOPK = "def top_k_filter(logits, k):\n"
TOPP = "def top_p_filter(logits, p):\n"
SAMPLE = (
    "def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None,\n"
    "                      generator=None):\n"
)
LOSS = (
    "def estimate_loss(model, tokens, config, device, generator,\n"
    "                  autocast=nullcontext()):\n"
)
MAIN = "def main(argv=None):\n"
TRAIN = "09d_train.ipynb"
FB = "def _forward_backward(run, step):\n"
OS = "def _optimizer_step(run):\n"
FB_BODY = """\
    c = run.config
    total = 0.0
    for m in range(c.grad_accum_steps):
        g = _batch_generator(c.seed, run.dist["rank"], step, m)
        x, y = get_batch(run.data.train, run.micro_bs, c.context_length,
                         run.device, generator=g)
        logits = run.model(x)
        loss = run.compute.loss_fn(logits.reshape(-1, logits.shape[-1]),
                                      y.reshape(-1))
        (loss / c.grad_accum_steps).backward()
        total += loss.item()
    return total / c.grad_accum_steps
"""
OS_BODY = """\
    params = [p for p in run.compute.params if p.grad is not None]
    norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params)).item()
    clip = run.config.grad_clip
    if clip > 0 and norm > clip:
        for p in params:
            p.grad.mul_(clip / (norm + 1e-6))
    run.opt.step()
    if run.ema is not None:
        run.ema.update()
    for p in params:
        p.grad = None
    return norm
"""

# unit -> (notebook, [(wrong version, key words its message must hold)], [correct])
CASES = {
    "top_k_filter": (
        GEN,
        [
            (TOPK + "    kth = torch.topk(logits, min(k, logits.shape[-1])).values\n"
             "    return logits.masked_fill(logits <= kth[..., -1:], float('-inf'))\n",
             "keep the k largest"),  # fmt: skip
            (TOPK + "    k = min(k, logits.shape[-1])\n"
             "    idx = torch.topk(logits, k, dim=-1).indices\n"
             "    out = torch.full_like(logits, float('-inf'))\n"
             "    return out.scatter(-1, idx, logits.gather(-1, idx))\n",
             "keeps ties"),  # fmt: skip
            (TOPK + "    kth = torch.topk(logits, min(k, logits.shape[-1]), dim=0)\n"
             "    return logits.masked_fill(logits < kth.values[-1:], float('-inf'))\n",
             "each row"),  # fmt: skip
        ],
        [
            TOPK + "    rows = []\n"
            "    for row in logits.reshape(-1, logits.shape[-1]).tolist():\n"
            "        kth = sorted(row, reverse=True)[min(k, len(row)) - 1]\n"
            "        rows.append([v if v >= kth else float('-inf') for v in row])\n"
            "    return torch.tensor(rows).reshape(logits.shape)\n",
        ],
    ),
    "top_p_filter": (
        GEN,
        [
            (TOPP + "    s, o = torch.sort(logits, -1, descending=True)\n"
             "    drop = torch.softmax(s, -1).cumsum(-1) > p\n"
             "    drop = drop.scatter(-1, o, drop)\n"
             "    return logits.masked_fill(drop, float('-inf'))\n",
             "the token that crosses p is kept"),  # fmt: skip
            (TOPP + "    s, o = torch.sort(logits, -1, descending=True)\n"
             "    c = s.cumsum(-1) - s\n"
             "    drop = c >= p\n"
             "    drop = drop.scatter(-1, o, drop)\n"
             "    return logits.masked_fill(drop, float('-inf'))\n",
             "probabilities"),  # fmt: skip
        ],
        [
            TOPP + "    probs = torch.softmax(logits, -1)\n"
            "    out = logits.clone()\n"
            "    flat, pf = out.reshape(-1, out.shape[-1]), probs.reshape(-1, "
            "probs.shape[-1])\n"
            "    for row, pr in zip(flat, pf):\n"
            "        total = 0.0\n"
            "        for i in sorted(range(len(pr)), key=lambda i: -pr[i].item()):\n"
            "            if total >= p:\n"
            "                row[i] = float('-inf')\n"
            "            total += pr[i].item()\n"
            "    return out\n",
        ],
    ),
    "sample_next_token": (
        GEN,
        [
            (SAMPLE + "    if temperature == 0:\n        return logits.argmax(-1)\n"
             "    probs = torch.softmax(logits, -1)\n"
             "    draws = torch.multinomial(probs, 1, generator=generator)\n"
             "    return draws.squeeze(-1)\n",
             "divide the logits by the temperature"),  # fmt: skip
            (SAMPLE + "    if temperature == 0:\n        return logits.argmax(-1)\n"
             "    probs = torch.softmax(logits / temperature, -1)\n"
             "    draws = torch.multinomial(probs, 1, generator=generator)\n"
             "    return draws.squeeze(-1)\n",
             "filter with top-k"),  # fmt: skip
            (SAMPLE + "    probs = next_token_probs(logits, temperature, top_k,\n"
             "                             top_p)\n"
             "    return torch.multinomial(probs, 1).squeeze(-1)\n",
             "the generator given"),  # fmt: skip
        ],
        [
            SAMPLE + "    if temperature == 0:\n        return logits.argmax(-1)\n"
            "    z = logits / temperature\n"
            "    if top_k is not None:\n        z = top_k_filter(z, top_k)\n"
            "    if top_p is not None:\n        z = top_p_filter(z, top_p)\n"
            "    u = torch.rand(z.shape[:-1] + (1,), generator=generator)\n"
            "    cdf = torch.softmax(z, -1).cumsum(-1)\n"
            "    return (cdf < u).sum(-1).clamp(max=z.shape[-1] - 1)\n",
        ],
    ),
    "estimate_loss": (
        EVAL,
        [
            (LOSS + "    bs = config.batch_size\n"
             "    x, y = get_batch(tokens, bs, config.context_length, device,\n"
             "                     generator=generator)\n"
             "    logits = model(x)\n"
             "    flat = logits.reshape(-1, logits.shape[-1])\n"
             "    return cross_entropy(flat, x.reshape(-1)).item()\n",
             "against the NEXT token"),  # fmt: skip
            (LOSS + "    x, y = get_batch(tokens, config.batch_size,\n"
             "                     config.context_length, device,\n"
             "                     generator=generator)\n"
             "    logits = model(x)\n"
             "    return cross_entropy(logits.reshape(-1, logits.shape[-1]),\n"
             "                         y.reshape(-1))\n",
             "a Python float"),  # fmt: skip
        ],
        [
            LOSS + "    total, n = 0.0, 0\n"
            "    for _ in range(config.eval_batches):\n"
            "        x, y = get_batch(tokens, config.batch_size,\n"
            "                         config.context_length, device,\n"
            "                         generator=generator)\n"
            "        with torch.no_grad():\n"
            "            logp = torch.log_softmax(model(x).float(), -1)\n"
            "        total += -logp.gather(-1, y[..., None]).sum().item()\n"
            "        n += y.numel()\n"
            "    return total / n\n",
        ],
    ),
    "_forward_backward": (
        TRAIN,
        [
            (FB + FB_BODY.replace("(loss / c.grad_accum_steps)", "loss"),
             "divide its loss by grad_accum_steps"),  # fmt: skip
            (FB + FB_BODY.replace("step, m)", "step, 0)"),
             "_batch_generator(seed, rank, step, m)"),  # fmt: skip
            (FB + FB_BODY.replace("return total / c.grad_accum_steps", "return total"),
             "the mean of the micro-batches' losses"),  # fmt: skip
        ],
        [FB + FB_BODY],
    ),
    "_optimizer_step": (
        TRAIN,
        [
            (OS + OS_BODY.replace("if clip > 0 and norm > clip:", "if True:"),
             "none when it is 0"),  # fmt: skip
            (OS + OS_BODY.replace("    if run.ema is not None:\n        "
                                  "run.ema.update()\n", ""),
             "run.ema.update() called 0 times"),  # fmt: skip
            (OS + OS_BODY.replace("    return norm", "    return min(norm, clip)"),
             "before clipping"),  # fmt: skip
        ],
        [OS + OS_BODY],
    ),
    "main": (
        CLI,
        [
            (MAIN + "    argv = list(sys.argv[1:] if argv is None else argv)\n"
             "    if not argv or argv[0] not in COMMANDS:\n"
             "        print('usage: llm-tutorial COMMAND')\n"
             "        return 2\n"
             "    return COMMANDS[argv[0]][0](argv[1:])\n",
             "printed no line for"),  # fmt: skip
            (MAIN + "    argv = list(sys.argv[1:] if argv is None else argv)\n"
             "    p = argparse.ArgumentParser(prog='llm-tutorial')\n"
             "    p.add_argument('command', choices=list(COMMANDS))\n"
             "    a, rest = p.parse_known_args(argv)\n"
             "    return COMMANDS[a.command][0](argv)\n",
             "the arguments after the command"),  # fmt: skip
            (MAIN + "    argv = list(sys.argv[1:] if argv is None else argv)\n"
             "    p = argparse.ArgumentParser(prog='llm-tutorial')\n"
             "    p.add_argument('command', choices=list(COMMANDS))\n"
             "    a, rest = p.parse_known_args(argv[:1])\n"
             "    COMMANDS[a.command][0](argv[1:])\n",
             "not the command's status"),  # fmt: skip
        ],
        [
            MAIN + "    argv = list(sys.argv[1:] if argv is None else argv)\n"
            "    names = ', '.join(COMMANDS)\n"
            "    if not argv or argv[0] in ('-h', '--help'):\n"
            "        print('usage: llm-tutorial COMMAND ...; commands: ' + names)\n"
            "        return 0\n"
            "    if argv[0] not in COMMANDS:\n"
            "        print(f'llm-tutorial: unknown command {argv[0]!r}; commands: '\n"
            "              f'{names}', file=sys.stderr)\n"
            "        raise SystemExit(2)\n"
            "    return COMMANDS[argv[0]][0](argv[1:])\n",
        ],
    ),
}


@pytest.fixture(scope="module")
def graded() -> dict[str, list[dict]]:
    "Every version of every unit, graded in one child process (one PyTorch import)."
    asks = [(nb, unit, versions(nb, unit, w, r)) for unit, (nb, w, r) in CASES.items()]
    return dict(zip(CASES, grade_many(asks)))


@pytest.mark.parametrize("unit", list(CASES))
def test_spec_both_ways(unit, graded):
    _, wrong, right = CASES[unit]
    check_both_ways(unit, graded[unit], wrong, right)
