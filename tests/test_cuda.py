"""The code paths that only a GPU takes: the model, training (float32, bf16, fp16 with a
grad scaler, torch.compile), checkpoints and sampling on a CUDA device, each checked
against the CPU.

Marked `cuda`: `pytest -m cuda tests/test_cuda.py` (what benchmarks/gpu_check.sh
runs). Without a GPU they skip, unless LLM_TUTORIAL_TEST_DEVICE names another device:
`LLM_TUTORIAL_TEST_DEVICE=cpu` runs them on the CPU (the GPU check's dry run does, so
the tests themselves are tested everywhere)."""

import json, os

import numpy as np
import pytest
import torch

from llm_tutorial.checkpoint import load_checkpoint, read_checkpoint
from llm_tutorial.data import get_batch
from llm_tutorial.generate import generate
from llm_tutorial.fast import speed_up
from llm_tutorial.model import TransformerLM
from llm_tutorial.config import TrainConfig
from llm_tutorial.data import TrainData
from llm_tutorial.train import train

DEVICE = os.environ.get("LLM_TUTORIAL_TEST_DEVICE", "cuda")
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        DEVICE.startswith("cuda") and not torch.cuda.is_available(),
        reason="no CUDA device (LLM_TUTORIAL_TEST_DEVICE=cpu runs these on the CPU)",
    ),
]
SHAPE = dict(
    vocab_size=64, context_length=32, d_model=64, num_layers=2, num_heads=4, d_ff=128
)
# a learnable pattern
SEQ = np.array([(i * 7 + i // 13) % 50 for i in range(20_000)], dtype=np.uint16)


def _model(fast: bool) -> TransformerLM:
    "The plain model, or with chapter 11's twins (`speed_up`)."
    torch.manual_seed(0)
    m = TransformerLM(**SHAPE)
    return speed_up(m) if fast else m


def _tiny(tmp_path, name: str, **kw) -> TrainConfig:
    knobs = dict(
        batch_size=8,
        max_steps=30,
        warmup_steps=3,
        lr=1e-2,
        eval_interval=10,
        eval_batches=2,
        checkpoint_interval=0,
        device=DEVICE,
        progress=False,
        out_dir=str(tmp_path / name),
    )
    return TrainConfig(**SHAPE, **{**knobs, **kw})


@pytest.mark.parametrize("fast", [False, True])
def test_forward_backward_match_cpu(fast):
    cpu, dev = _model(fast), _model(fast).to(DEVICE)
    x = torch.randint(0, 64, (3, 32))
    out_cpu, out_dev = cpu(x), dev(x.to(DEVICE))
    torch.testing.assert_close(out_dev.cpu(), out_cpu, rtol=1e-3, atol=1e-3)
    out_cpu.square().mean().backward()
    out_dev.square().mean().backward()
    for (k, a), b in zip(cpu.named_parameters(), dev.parameters()):
        torch.testing.assert_close(b.grad.cpu(), a.grad, rtol=1e-2, atol=1e-4, msg=k)


def test_bf16_autocast_close_to_float32():
    m = _model(True).to(DEVICE)
    x = torch.randint(0, 64, (3, 32), device=DEVICE)
    with torch.no_grad():
        ref = m(x)
        with torch.autocast(
            device_type=torch.device(DEVICE).type, dtype=torch.bfloat16
        ):
            low = m(x)
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max() < 0.1


def test_get_batch_on_device():
    x, y = get_batch(SEQ, 4, 16, DEVICE, generator=0)
    assert x.device.type == torch.device(DEVICE).type and x.dtype == torch.long
    torch.testing.assert_close(x[:, 1:], y[:, :-1])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_training_learns(tmp_path, dtype):
    if dtype == "float16" and not DEVICE.startswith("cuda"):
        pytest.skip("float16 autocast with a grad scaler is the CUDA path")
    res = train(
        _tiny(tmp_path, dtype, dtype=dtype), data=TrainData(SEQ[:16_000], SEQ[16_000:])
    )
    evals = [r for r in res.log if r["kind"] == "eval"]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 1.0, [
        r["val_loss"] for r in evals
    ]
    steps = [r for r in res.log if r["kind"] == "train"]
    assert all(r["mfu"] > 0 for r in steps) and all(
        r["tokens_per_s"] > 0 for r in steps
    )
    assert evals[-1]["peak_mem_mb"] > 0
    assert res.log[0]["peak_flops"] > 0, res.log[0]["peak_source"]


def test_compiled_training_matches_eager(tmp_path):
    if not DEVICE.startswith("cuda") and not os.environ.get(
        "LLM_TUTORIAL_TEST_COMPILE"
    ):
        pytest.skip(
            "torch.compile on the CPU takes minutes; LLM_TUTORIAL_TEST_COMPILE=1 runs "
            "it"
        )
    data = TrainData(SEQ[:16_000], SEQ[16_000:])
    eager = train(_tiny(tmp_path, "eager", max_steps=10), data=data)
    compiled = train(_tiny(tmp_path, "compiled", max_steps=10, compile=True), data=data)
    a = [r["loss"] for r in eager.log if r["kind"] == "train"]
    b = [r["loss"] for r in compiled.log if r["kind"] == "train"]
    np.testing.assert_allclose(b, a, rtol=2e-2)
    sd = read_checkpoint(compiled.checkpoint)["model"]
    assert not any(k.startswith("_orig_mod.") for k in sd), (
        "checkpoint keys carry no compile prefix"
    )


def test_checkpoint_from_device_loads_on_cpu(tmp_path):
    res = train(
        _tiny(tmp_path, "ck", max_steps=10), data=TrainData(SEQ[:16_000], SEQ[16_000:])
    )
    cpu = TransformerLM(**SHAPE)
    load_checkpoint(res.checkpoint, cpu, restore_rng=False)
    x = torch.randint(0, 64, (2, 32))
    with torch.no_grad():
        torch.testing.assert_close(
            res.model(x.to(DEVICE)).cpu(), cpu(x), rtol=1e-3, atol=1e-3
        )
    cfg = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert cfg["device"] == DEVICE


def test_kv_cache_sampling_matches_full_recompute():
    m = _model(True).to(DEVICE).eval()
    prompt = [[1, 2, 3, 4], [5, 6, 7, 8]]
    cached = generate(m, prompt, 40, temperature=0, use_cache=True)
    full = generate(m, prompt, 40, temperature=0, use_cache=False)
    assert cached == full
