"""The memory plan and the speed choices as pure functions: model shapes, the peak-memory
prediction, the plan's picks, kernel/optimizer choices and their fallbacks, the options, the plan
rows. No training (the measured checks are in test_speed_memory.py and test_speed_packing.py)."""
from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from unitune.errors import SpecError
from unitune.local.hardware import (Hardware, choose, choose_attention, choose_liger,
                                    choose_optimizer, speed_plan_rows)
from unitune.local.memory import (GB, memory_budget_gb, plan_memory, predict_memory,
                                  read_model_shape, shape_from_config)
from unitune.spec import JobSpec

QWEN05 = dict(model_type="qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
              num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
              tie_word_embeddings=True)
H200 = Hardware("cuda", gpus=1, gpu_name="NVIDIA H200", gpu_memory_gb=150.0, bf16=True, fp16=True)


def qwen05():
    return shape_from_config(QWEN05)


def spec_of(**kw) -> JobSpec:
    raw = {"name": "t", "backend": "local", "base_model": "unitune/tiny-chat",
           "data": {"train": "train.jsonl"}}
    raw.update(kw)
    return JobSpec.from_dict(raw)


def test_shape_counts_parameters_as_transformers_and_peft_do():
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    with torch.device("meta"):
        full = Qwen2ForCausalLM(Qwen2Config(**{k: v for k, v in QWEN05.items()
                                               if k != "model_type"}))
    assert qwen05().n_params == sum(p.numel() for p in full.parameters()) == 494_032_768

    small = dict(QWEN05, hidden_size=96, intermediate_size=256, num_hidden_layers=3,
                 num_attention_heads=6, num_key_value_heads=2, vocab_size=300)
    model = Qwen2ForCausalLM(Qwen2Config(**{k: v for k, v in small.items() if k != "model_type"}))
    shape = shape_from_config(model.config)
    assert shape.n_params == sum(p.numel() for p in model.parameters())
    for r, targets in ((8, None), (4, ["q_proj", "v_proj"])):
        peft = get_peft_model(Qwen2ForCausalLM(model.config), LoraConfig(
            task_type="CAUSAL_LM", r=r, target_modules=targets or "all-linear"))
        trained = sum(p.numel() for p in peft.parameters() if p.requires_grad)
        assert shape.lora_params(r, targets) == trained


def test_prediction_is_pure_and_orders_the_choices():
    s = qwen05()
    base = dict(rows=8, seq_len=739, tokens=6016, device="cuda")
    a, b = predict_memory(s, **base), predict_memory(s, **base)
    assert a == b and a.total > 0
    # Qwen2-0.5B in bf16: 0.99 GB of weights; LoRA r16 all-linear: 8.8M fp32 parameters
    assert a.weights == s.n_params * 2 and a.trainable_params == 8_798_208
    assert a.trainable == 8_798_208 * 16  # weight + gradient + Adam m, v, all fp32
    kept = a.activations
    every2 = predict_memory(s, **base, checkpoint_every=2).activations
    every1 = predict_memory(s, **base, checkpoint_every=1).activations
    offload = predict_memory(s, **base, checkpoint_every=1, offload=True).activations
    assert kept > every2 > every1 > offload
    assert predict_memory(s, **dict(base, tokens=3000)).total < a.total
    assert predict_memory(s, **base, liger=True).total < a.total
    assert predict_memory(s, **dict(base, device="cpu"), liger=True).activations == \
        predict_memory(s, **dict(base, device="cpu")).activations  # no Liger off CUDA
    assert predict_memory(s, **base, attention="flash").total < a.total  # no mask
    # 4-bit linear layers; the 136M-parameter embedding stays bf16
    assert predict_memory(s, **base, adapter="qlora").weights < a.weights / 2
    full = predict_memory(s, **base, adapter="full")
    assert full.trainable == s.n_params * 16
    assert predict_memory(s, **base, adapter="full", optimizer="adamw_8bit").trainable == \
        s.n_params * 10
    assert predict_memory(s, **dict(base, device="cpu")).runtime > 0 == a.runtime


def test_plan_picks_the_fastest_micro_step_that_fits():
    s = qwen05()
    common = dict(rows=8, seq_len=739, tokens_per_row=752.0, device="cuda")
    roomy = plan_memory(s, budget_gb=memory_budget_gb(H200), **common)
    assert roomy.fits and roomy.checkpoint_every == 0 and roomy.rows == 8
    assert roomy.why == "everything kept"

    tight = plan_memory(s, budget_gb=1.9, **common)
    assert tight.fits and tight.checkpoint_every == 1 and tight.estimate.gb <= 1.9

    partial_gb = predict_memory(s, rows=8, seq_len=739, tokens=6016, checkpoint_every=2,
                                device="cuda").gb
    partial = plan_memory(s, budget_gb=partial_gb + 0.01, **common)
    assert partial.fits and partial.checkpoint_every >= 2

    # long rows: a GPU micro-step can be split while each part keeps >= 4096 tokens
    long = dict(rows=8, seq_len=2048, tokens_per_row=2048.0, device="cuda")
    half = predict_memory(s, rows=4, seq_len=2048, tokens=8192, device="cuda").gb
    split = plan_memory(s, budget_gb=half + 0.01, **long)
    assert (split.rows, split.split, split.checkpoint_every) == (4, 2, 0)

    never = plan_memory(s, budget_gb=1.0, checkpointing=False, **common)
    assert not never.fits and never.checkpoint_every == 0
    forced = plan_memory(s, budget_gb=None, every_n=3, **common)
    assert forced.checkpoint_every == 3 and forced.fits
    off = plan_memory(s, budget_gb=None, checkpointing=True, offload=True, **common)
    assert off.offload and off.checkpoint_every == 1
    nothing = plan_memory(s, budget_gb=0.5, **common)
    assert not nothing.fits and nothing.offload and nothing.rows == 1


def test_choose_runs_the_plan_for_the_gpu_it_sees():
    spec = spec_of(hyperparameters={"batch_size": 16, "max_seq_length": 739})
    eff = choose(spec, H200, shape=qwen05())
    assert eff.activation_checkpointing is False and eff.predicted_memory_gb > 5
    assert eff.memory_budget_gb == pytest.approx(134.0)
    assert "memory plan" in eff.why["activation_checkpointing"]
    lean = choose(spec, H200, shape=qwen05(), options={"memory_budget_gb": 2.5})
    assert lean.activation_checkpointing is True and lean.predicted_memory_gb <= 2.5
    assert any("checkpoint every" in line or "every layer" in line for line in lean.lines())
    forced = choose(spec, H200, shape=qwen05(),
                    options={"memory_budget_gb": 1.0, "activation_checkpointing": False})
    assert forced.activation_checkpointing is False
    assert forced.why["activation_checkpointing"] == "set in backend_options.local"
    assert "DOES NOT FIT" in forced.why["predicted_memory_gb"]
    prefix = choose(spec_of(adapter={"type": "prefix"}), H200, shape=qwen05(),
                    options={"memory_budget_gb": 1.0})
    assert prefix.activation_checkpointing is False  # prefix tuning breaks with it
    # without a shape nothing is planned (plan without a readable config.json)
    assert choose(spec, H200).predicted_memory_gb is None


def test_attention_kernel_by_what_is_installed():
    cpu = Hardware("cpu", ram_gb=8)
    none, flash2, flash3 = (lambda n: False), (lambda n: n == "flash_attn"), \
        (lambda n: n in ("flash_attn", "flash_attn_interface"))
    assert choose_attention(cpu, "bf16", {}, has=flash2)[0] == "sdpa"
    assert choose_attention(H200, "bf16", {}, has=flash2)[0] == "flash_attention_2"
    assert choose_attention(H200, "bf16", {}, has=flash3)[0] == "flash_attention_3"
    impl, why = choose_attention(H200, "bf16", {}, has=none)
    assert impl == "sdpa" and "not installed" in why
    assert choose_attention(H200, "fp32", {}, has=flash2)[0] == "sdpa"  # flash needs 16-bit
    assert choose_attention(cpu, "fp32", {"attn_implementation": "eager"})[0] == "eager"


def test_liger_only_where_it_can_run():
    cpu = Hardware("cpu", ram_gb=8)
    yes = lambda n: True  # noqa: E731
    assert choose_liger(cpu, "qwen2", {}, has=yes) == (False, "Liger's Triton kernels need a "
                                                              "CUDA GPU")
    on, why = choose_liger(H200, "qwen2", {}, has=lambda n: False)
    assert not on and "not installed" in why and "unitune[gpu]" in why
    assert choose_liger(H200, "qwen2", {}, has=yes)[0] is True
    assert choose_liger(H200, "gpt2", {}, has=yes)[0] is False
    assert choose_liger(H200, "qwen2", {"liger": False}, has=yes)[0] is False
    asked = choose_liger(cpu, "qwen2", {"liger": True}, has=yes)
    assert asked[0] is False and "liger: true" in asked[1]


def test_liger_absent_is_detected_without_importing_it(monkeypatch):
    """This machine has no liger-kernel (a CPU install must not pull Triton); even where it is
    installed, a module that cannot be imported reads as absent."""
    from unitune.local.hardware import has_module

    monkeypatch.setitem(sys.modules, "liger_kernel", None)
    assert has_module("liger_kernel") is False
    assert choose_liger(H200, "qwen2", {})[0] is False


def test_optimizer_choice_and_refusals():
    cpu = Hardware("cpu", ram_gb=8)
    assert choose_optimizer(cpu, {})[0] == "adamw_torch_fused"
    assert choose_optimizer(cpu, {"optimizer": "adamw_8bit"}, has=lambda n: True)[0] == "adamw_8bit"
    with pytest.raises(SpecError) as err:
        choose_optimizer(cpu, {"optimizer": "paged_adamw_8bit"}, has=lambda n: True)
    assert err.value.field == "backend_options.local.optimizer" and "CUDA" in err.value.message
    assert choose_optimizer(H200, {"optimizer": "paged_adamw_8bit"},
                            has=lambda n: True)[0] == "paged_adamw_8bit"
    with pytest.raises(SpecError) as err:
        choose_optimizer(H200, {"optimizer": "adamw_8bit"}, has=lambda n: False)
    assert "bitsandbytes" in err.value.message
    with pytest.raises(SpecError):
        choose_optimizer(cpu, {"optimizer": "sgd"})


def test_speed_options_are_typed_and_reach_the_worker_only_when_set():
    from pydantic import ValidationError

    from unitune.local.options import LocalOptions, worker_options

    defaults = worker_options(LocalOptions())
    for key in ("liger", "optimizer", "torch_compile", "checkpoint_every_n_layers",
                "activation_offload", "memory_budget_gb"):
        assert key not in defaults
    assert defaults["attn_implementation"] == "auto"
    set_ = worker_options(LocalOptions(optimizer="ADAMW_8BIT", liger=False, memory_budget_gb=3,
                                       checkpoint_every_n_layers=2, activation_offload=True,
                                       torch_compile=True))
    assert set_["optimizer"] == "adamw_8bit" and set_["checkpoint_every_n_layers"] == 2
    for bad in ({"optimizer": "sgd"}, {"checkpoint_every_n_layers": 0},
                {"memory_budget_gb": -1}):
        with pytest.raises(ValidationError):
            LocalOptions(**bad)


def test_plan_rows_show_the_memory_plan(tmp_path):
    from unitune.local.options import LocalOptions

    model = tmp_path / "qwen"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(QWEN05))
    assert read_model_shape(str(model)) == qwen05()
    spec = spec_of(hyperparameters={"batch_size": 16, "max_seq_length": 512})
    rows = {r.field: r for r in speed_plan_rows(spec, str(model), LocalOptions())}
    for field in ("backend_options.local.attn_implementation", "backend_options.local.liger",
                  "backend_options.local.optimizer", "backend_options.local.torch_compile"):
        assert field in rows
    memory = rows["(memory plan)"]
    assert memory.vendor_value.split(" GB")[0].replace(".", "").isdigit()
    assert "worst case" in memory.note
    lean = {r.field: r for r in speed_plan_rows(spec, str(model),
                                                LocalOptions(memory_budget_gb=2.0))}
    assert "every layer" in lean["(memory plan)"].vendor_value
    tiny = {r.field: r for r in speed_plan_rows(spec, "unitune/tiny-chat", LocalOptions())}
    assert "GB" in tiny["(memory plan)"].vendor_value
    unknown = {r.field: r for r in speed_plan_rows(spec, str(tmp_path / "none"), LocalOptions())}
    assert unknown["(memory plan)"].vendor_value == "decided on the worker"


def test_detect_light_reads_the_gpu_from_nvidia_smi(tmp_path, monkeypatch):
    """`plan` sizes the memory plan for the GPU nvidia-smi reports (no torch, no CUDA)."""
    from unitune.local.hardware import detect_light

    exe = tmp_path / "nvidia-smi"
    exe.write_text("#!/bin/sh\necho 'NVIDIA H200, 143771'\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    hw = detect_light()
    assert hw.device == "cuda" and hw.gpu_name == "NVIDIA H200"
    assert hw.gpu_memory_gb == pytest.approx(143771 * 2**20 / GB)
    assert "H200 (151 GB)" in hw.describe()
