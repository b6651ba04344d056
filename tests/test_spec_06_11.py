"""The spec tests of chapters 06 and 11, both ways: typical wrong versions of each
unit are rejected with a message that names the bug, correct versions written unlike
the book's pass, and the exercise stub fails."""

import pytest

from llm_tutorial.exercises import _in_words, grade_many

STUB = '    raise NotImplementedError("exercise: write it")\n'

# cross_entropy ------------------------------------------------------------------
CE_HEAD = "def cross_entropy(logits, targets, ignore_index=-100):\n"
CE_RIGHT = [
    # as PyTorch: the kept rows picked out, then their mean (nan if none is kept)
    CE_HEAD
    + """\
    logits = logits.reshape(-1, logits.shape[-1]).float()
    targets = targets.reshape(-1)
    if ignore_index is not None:
        keep = targets != ignore_index
        logits, targets = logits[keep], targets[keep]
    lse = torch.logsumexp(logits, dim=-1)
    return (lse - logits[torch.arange(len(targets)), targets]).mean()
""",
    # a plain loop over the rows
    CE_HEAD
    + """\
    rows = logits.reshape(-1, logits.shape[-1])
    total, n = 0.0, 0
    for row, y in zip(rows, targets.reshape(-1).tolist()):
        if ignore_index is not None and y == ignore_index:
            continue
        m = row.max()
        total = total + m + torch.log(torch.exp(row - m).sum()) - row[y]
        n += 1
    return total / n
""",
]
CE_BODY = """\
    keep = targets != ignore_index if ignore_index is not None else targets >= 0
    o_y = logits.gather(-1, targets.where(keep, 0).unsqueeze(-1)).squeeze(-1)
    losses = (LSE - o_y).where(keep, 0.0)
    return losses.sum() / keep.sum()
"""
CE_STABLE = "torch.logsumexp(logits, dim=-1)"
CE_OK = CE_BODY.replace("LSE", CE_STABLE)
CE_WRONG = [
    (CE_HEAD + CE_BODY.replace("LSE", "torch.exp(logits).sum(-1).log()"), "maximum"),
    (  # the mean over the batch only
        CE_HEAD
        + "    lse = torch.logsumexp(logits, dim=-1)\n"
        + "    o_y = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)\n"
        + "    return (lse - o_y).mean(dim=0)\n",
        "the mean over all the others",
    ),
    (  # the log of a (stable) softmax
        CE_HEAD
        + "    p = torch.softmax(logits, dim=-1)\n"
        + "    return -p.gather(-1, targets.unsqueeze(-1)).log().mean()\n",
        "underflows to 0",
    ),
    (  # CS336's contract only: no ignore_index
        CE_HEAD
        + f"    lse = {CE_STABLE}\n"
        + "    o_y = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)\n"
        + "    return (lse - o_y).mean()\n",
        "count neither in the sum nor in the number",
    ),
    (  # ignored positions counted in the mean
        CE_HEAD + CE_OK.replace("keep.sum()", "keep.numel()"),
        "count neither in the sum nor in the number",
    ),
    (  # a fixed -100
        CE_HEAD + CE_OK.replace("!= ignore_index", "!= -100"),
        "leave out the ignore_index given",
    ),
    (  # None not handled
        CE_HEAD
        + CE_OK.replace("if ignore_index is not None else targets >= 0", ""),
        "None leaves no position out",
    ),
]

# AdamW.step ---------------------------------------------------------------------
ADAMW_HEAD = "@torch.no_grad()\ndef step(self, closure=None):\n"
ADAMW = (
    ADAMW_HEAD
    + """\
    for group in self.param_groups:
        lr, (b1, b2) = group["lr"], group["betas"]
        eps, wd = group["eps"], group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:
                state["t"] = 0
                state["m"], state["v"] = torch.zeros_like(p), torch.zeros_like(p)
            state["t"] += 1
            t, g = state["t"], p.grad
            state["m"] = b1 * state["m"] + (1 - b1) * g
            state["v"] = b2 * state["v"] + (1 - b2) * g * g
            lr_t = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
            p -= lr_t * state["m"] / (state["v"].sqrt() + eps)
            p -= lr * wd * p
"""
)
DECAY = "            p -= lr * wd * p\n"
ADAMW_TORCH_ORDER = (  # PyTorch's order (decay first) and eps on sqrt(v-hat)
    ADAMW.replace(DECAY, "")
    .replace("            state[\"m\"] = b1", "            p.mul_(1 - lr * wd)\n"
             "            state[\"m\"] = b1")  # fmt: skip
    .replace(
        '            lr_t = lr * math.sqrt(1 - b2**t) / (1 - b1**t)\n'
        '            p -= lr_t * state["m"] / (state["v"].sqrt() + eps)\n',
        '            m_hat = state["m"] / (1 - b1**t)\n'
        '            v_hat = state["v"] / (1 - b2**t)\n'
        "            p -= lr * m_hat / (v_hat.sqrt() + eps)\n",
    )
)
LR_T = "lr_t = lr * math.sqrt(1 - b2**t) / (1 - b1**t)"
ADAMW_WRONG = [
    (ADAMW.replace(LR_T, "lr_t = lr"), "no bias correction"),
    (
        ADAMW.replace(DECAY, "").replace("p.grad\n", "p.grad + wd * p\n"),
        "L2, as in Adam, not AdamW",
    ),
    (ADAMW.replace("p -= lr * wd * p", "p -= wd * p"), "without the learning rate"),
    (ADAMW.replace('state["t"] = 0', 'state["t"] = 1'), "t off by one"),
    (ADAMW.replace('lr, (b1, b2) = group["lr"]', 'lr, (b1, b2) = self.defaults["lr"]'),
     "group['lr'] at each step"),  # fmt: skip
    (  # the state outside self.state: state_dict() misses it
        ADAMW.replace(
            "state = self.state[p]",
            'state = vars(self).setdefault("moments", {}).setdefault(p, {})',
        ),
        "self.state[p]",
    ),
]

# get_lr_cosine_schedule ---------------------------------------------------------
LR_HEAD = "def get_lr_cosine_schedule(it, max_lr, min_lr, warmup_iters, cycle_iters):\n"
LR = (
    LR_HEAD
    + """\
    if it < warmup_iters:
        return it / warmup_iters * max_lr
    if it > cycle_iters:
        return min_lr
    progress = (it - warmup_iters) / (cycle_iters - warmup_iters)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - min_lr)
"""
)
LR_RIGHT = (  # the fraction of the cycle clipped at 1, the cosine as a sine
    LR_HEAD
    + """\
    if it < warmup_iters:
        return max_lr * it / warmup_iters
    frac = min((it - warmup_iters) / max(cycle_iters - warmup_iters, 1), 1.0)
    return min_lr + (max_lr - min_lr) * (1 - math.sin(math.pi * (frac - 0.5))) / 2
"""
)
LR_WRONG = [
    (LR.replace("if it < warmup_iters:", "if False:"), "0 at it = 0"),
    (LR.replace("(it - warmup_iters)", "(it - warmup_iters - 1)"), "the peak"),
    (LR.replace("    if it > cycle_iters:\n        return min_lr\n", ""),
     "stays min_learning_rate"),  # fmt: skip
    (LR.replace("if it < warmup_iters", "if it <= warmup_iters"), "warmup_iters = 0"),
]

# gradient_clipping --------------------------------------------------------------
CLIP_HEAD = "def gradient_clipping(parameters, max_l2_norm, eps=1e-6):\n"
CLIP_RIGHT = (  # a plain loop in float64, a float returned
    CLIP_HEAD
    + """\
    grads = [p.grad for p in parameters if p.grad is not None]
    total = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))
    if total > max_l2_norm:
        for g in grads:
            g.mul_(max_l2_norm / (total + eps))
    return total
"""
)
CLIP = (
    CLIP_HEAD
    + """\
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))
    scale = (max_l2_norm / (total + eps)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale)
    return total
"""
)
CLIP_WRONG = [
    (  # each tensor clipped to its own norm
        CLIP_HEAD
        + """\
    for p in parameters:
        if p.grad is not None:
            n = p.grad.norm()
            p.grad.mul_((max_l2_norm / (n + eps)).clamp(max=1.0))
    return n
""",
        "one norm over all gradients together",
    ),
    (CLIP.replace("(total + eps)", "total"), "1e-6"),
    (CLIP.replace(".clamp(max=1.0)", ""), "leave the gradients as they are"),
    (  # the generator read twice
        CLIP_HEAD
        + """\
    total = math.sqrt(sum(float(p.grad.pow(2).sum())
                          for p in parameters if p.grad is not None))
    for p in parameters:
        if p.grad is not None and total > max_l2_norm:
            p.grad.mul_(max_l2_norm / (total + eps))
    return total
""",
        "a generator runs once",
    ),
    (CLIP.replace("    return total\n", ""), "return the norm before clipping"),
]

# softmax_backward ---------------------------------------------------------------
SB_HEAD = "def softmax_backward(g, y, dim=-1):\n"
SB_RIGHT = (  # the Jacobian diag(y) - y y^T of each row, times g
    SB_HEAD
    + """\
    gm, ym = g.movedim(dim, -1), y.movedim(dim, -1)
    rows_g, rows_y = gm.reshape(-1, gm.shape[-1]), ym.reshape(-1, ym.shape[-1])
    out = [(torch.diag(y) - torch.outer(y, y)) @ g for g, y in zip(rows_g, rows_y)]
    return torch.stack(out).reshape(gm.shape).movedim(-1, dim)
"""
)
SB_WRONG = [
    (SB_HEAD + "    return g * y\n", "the sum over the row is not optional"),
    (
        SB_HEAD + "    return y * (g - (g * y).sum(-1, keepdim=True))\n",
        "along dim only",
    ),
    (
        SB_HEAD
        + "    gy = g.mul_(y)\n"
        + "    return gy.sub_(y * gy.sum(dim, keepdim=True))\n",
        "do not change g in place",
    ),
]

# CrossEntropyFunction.backward --------------------------------------------------
CEB_HEAD = "@staticmethod\ndef backward(ctx, grad_out):\n"
CEB_RIGHT = (  # the one-hot matrix built, the rows weighted by a float mask
    CEB_HEAD
    + """\
    e, s, targets, keep, n = ctx.saved_tensors
    p = e / s
    onehot = F.one_hot(targets, e.shape[-1]).to(p.dtype)
    rows = torch.ones_like(s) if keep is None else keep[:, None].to(p.dtype)
    return (p - onehot) * rows * grad_out / n, None, None
"""
)
CEB = (
    CEB_HEAD
    + """\
    e, s, targets, keep, n = ctx.saved_tensors
    share = (grad_out / n).expand(len(targets), 1)
    if keep is not None:
        share = share.where(keep[:, None], 0.0)
    grad = e * (share / s)
    grad.scatter_add_(-1, targets[:, None], -share)
    return grad, None, None
"""
)
CEB_WRONG = [
    (CEB.replace("(grad_out / n)", "grad_out"), "divided by the number of rows"),
    (
        CEB.replace("share = share.where(keep[:, None], 0.0)", "pass"),
        "rows not kept get a zero gradient",
    ),
    (CEB.replace("(grad_out / n)", "(1 / n)"), "multiply by grad_out"),
]

OPT, FAST = "06_optim.ipynb", "11_fast.ipynb"
CASES = {  # unit: (notebook, correct versions, (wrong version, words), stub's head)
    "cross_entropy": (OPT, CE_RIGHT, CE_WRONG, CE_HEAD),
    "AdamW.step": (OPT, [ADAMW, ADAMW_TORCH_ORDER], ADAMW_WRONG, ADAMW_HEAD),
    "get_lr_cosine_schedule": (OPT, [LR, LR_RIGHT], LR_WRONG, LR_HEAD),
    "gradient_clipping": (OPT, [CLIP_RIGHT, CLIP], CLIP_WRONG, CLIP_HEAD),
    "softmax_backward": (FAST, [SB_RIGHT], SB_WRONG, SB_HEAD),
    "CrossEntropyFunction.backward": (FAST, [CEB_RIGHT], CEB_WRONG, CEB_HEAD),
}


@pytest.fixture(scope="module")
def graded() -> dict[str, list[dict]]:
    "Every version of every unit, graded in one child process."
    asks = [(nb, unit, right + [text for text, _ in wrong] + [head + STUB])
            for unit, (nb, right, wrong, head) in CASES.items()]  # fmt: skip
    return dict(zip(CASES, grade_many(asks)))


@pytest.mark.parametrize("unit", list(CASES))
def test_spec_both_ways(unit, graded):
    notebook, right, wrong, head = CASES[unit]
    results = graded[unit]
    for text, r in zip(right, results):
        assert r["ok"], f"a correct {unit} failed:\n{_in_words(r)}\n{text}"
    for (text, words), r in zip(wrong, results[len(right) :]):
        said = _in_words(r)
        assert not r["ok"], f"a wrong {unit} passed:\n{text}"
        assert words in said, f"{unit}: {words!r} not in\n{said}\nfor\n{text}"
    assert "NotImplementedError: exercise" in _in_words(results[-1])
