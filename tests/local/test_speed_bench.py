"""benchmarks/local_throughput.py without a GPU: the CUDA run's plan as a dry run (the same
functions the recipe calls: like-for-like settings, unitune's memory plan, both predictions),
and the model-FLOPs formula behind MFU against torch's own FLOP counter."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "local_throughput.py"


def bench_module():
    spec = importlib.util.spec_from_file_location("local_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dry_run(tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / f"plan{len(list(tmp_path.iterdir()))}.json"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cuda", "--dry-run",
                           "--json", str(out), *extra], capture_output=True, text=True,
                          env=env, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_gpu_run_is_planned_like_for_like_without_a_gpu(tmp_path):
    plan = dry_run(tmp_path)
    trl, ut = plan["trl"], plan["unitune"]
    cfg, targs = ut["effective_config"], ut["trainer_args"]
    assert plan["model"] == "qwen2-0.5b-random" and plan["parameters"] == 494_032_768
    # the same learning rate and the loss over the same (assistant) tokens for both
    assert trl["settings"]["learning_rate"] == cfg["learning_rate"] == targs["learning_rate"] == 2e-4
    assert trl["settings"]["assistant_only_loss"] is True
    assert trl["settings"]["bf16"] is True and cfg["precision"] == "bf16" and targs["bf16"]
    # padding-free packing, fused AdamW, and the memory plan for an H200
    assert cfg["packing"] is True and targs["pad_to_multiple_of"] == 64
    assert targs["optim"] == "adamw_torch_fused" and cfg["optimizer"] == "adamw_torch_fused"
    assert cfg["memory_budget_gb"] == pytest.approx(0.9 * 150 - 1)
    assert cfg["activation_checkpointing"] is False  # an H200 holds every activation
    assert targs["per_device_train_batch_size"] * targs["gradient_accumulation_steps"] * \
        float(cfg["packed_rows"].split("~")[1].split(" ")[0]) == pytest.approx(16, rel=0.1)
    assert trl["predicted_peak_mb"] > 1000 and ut["predicted_peak_mb"] > 1000
    # without flash-attn / liger-kernel here, the plan says so instead of failing
    assert cfg["attn_implementation"] == "sdpa" and "not installed" in cfg["why"]["attn_implementation"]
    assert cfg["liger"] is False and "not installed" in cfg["why"]["liger"]


def test_a_memory_budget_turns_checkpointing_on(tmp_path):
    plan = dry_run(tmp_path, "--option", "memory_budget_gb=1.9")
    cfg = plan["unitune"]["effective_config"]
    assert cfg["activation_checkpointing"] is True and cfg["predicted_memory_gb"] <= 1.9
    assert plan["unitune"]["trainer_args"]["activation_checkpointing_kwargs"]["use_reentrant"] \
        is False
    assert plan["predicted_memory_ratio"] < 0.6


def test_model_flops_formula_matches_torch_flop_counter():
    """Forward FLOPs of the matmuls (2 per weight per token, LM head included, embedding lookup
    not) as torch.utils.flop_counter counts them on a real forward pass."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import Qwen2Config, Qwen2ForCausalLM

    sys.path.insert(0, str(ROOT))
    bench = bench_module()
    bench.import_unitune()
    from unitune.local.memory import shape_from_config

    cfg = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, vocab_size=300, tie_word_embeddings=True)
    model = Qwen2ForCausalLM(Qwen2Config(**cfg, attn_implementation="sdpa")).eval()
    shape = shape_from_config(dict(cfg, model_type="qwen2"))
    T = 50
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(input_ids=torch.randint(0, 300, (1, T)), use_cache=False)
    counts = counter.get_flop_counts()["Global"]
    matmul = sum(v for k, v in counts.items() if "mm" in str(k) and "attention" not in str(k))
    linear_per_token = (shape.layers * shape.layer_linear_params() + shape.vocab * shape.hidden)
    assert matmul == 2 * linear_per_token * T
    # causal attention: token k of a sequence attends to k keys, so [1, 2, 3] average 2
    assert bench.mean_context([3]) == 2.0
    assert bench.model_flops_per_token(shape, 0, 2.0) == \
        4 * linear_per_token + 12 * shape.layers * shape.q_dim * 2.0
