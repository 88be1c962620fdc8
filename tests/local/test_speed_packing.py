"""The speed features on the real stack, on CPU: padding-free packed rows where no example
attends to its neighbour, the speed options reaching the trainer (partial / offloaded
checkpointing, the 8-bit optimizer), and the clean fallbacks where a kernel is missing (Liger,
flash attention) — the run trains and says what it fell back to."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .conftest import make_spec


def tokenized(tok, rows: list[dict]) -> list[list[int]]:
    return [tok.apply_chat_template(r["messages"], tokenize=True, return_dict=False) for r in rows]


def test_packed_examples_never_attend_to_their_neighbours(tiny_home):
    """TRL's padding-free collator flattens three examples into one row (position ids restart at
    each example, the row is bucket-padded to 64); the model, as the recipe loads it (no KV
    cache) and fed the whole collated batch as the trainer feeds it, gives each example the
    logits it has alone: SDPA gets a block-diagonal mask from the position ids."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from unitune.local.models import resolve
    from unitune.local.synthetic import chat_rows
    from unitune.local.training import load_tokenizer

    path = resolve("unitune/tiny-chat").path
    tok = load_tokenizer(path)
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa").eval()
    model.config.use_cache = False  # as load_model sets it for training
    examples = tokenized(tok, chat_rows(3, seed=11, max_sentences=4))
    collate = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True,
                                              pad_to_multiple_of=64)
    batch = collate([{"input_ids": ids} for ids in examples])
    assert batch["input_ids"].shape[0] == 1 and batch["input_ids"].shape[1] % 64 == 0
    assert "attention_mask" not in batch
    inputs = {k: v for k, v in batch.items() if k != "labels"}

    def worst_gap(logits) -> float:
        start, worst = 0, 0.0
        for ids in examples:
            alone = model(input_ids=torch.tensor([ids])).logits[0]
            worst = max(worst, (logits[start:start + len(ids)] - alone).abs().max().item())
            start += len(ids)
        return worst

    with torch.no_grad():
        assert worst_gap(model(**inputs).logits[0]) < 1e-4, "a packed example saw its neighbour"
        # the check can fail: with a KV cache (generation's default) transformers does not look
        # for packed sequences, and the examples attend across their boundaries
        assert worst_gap(model(**inputs, use_cache=True).logits[0]) > 1e-2


def test_speed_options_reach_the_trainer(tiny_home, fixed_batch_file, tmp_path):
    """common_args → SFTConfig → SFTTrainer: checkpointing of every 2nd layer and bitsandbytes'
    8-bit AdamW, as the trainer really sets them up; offloading is for GPUs (on a CPU the
    activations are in host memory already, and torch refuses pinned memory)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from unitune.local.adapters import peft_config
    from unitune.local.data import load_rows
    from unitune.local.hardware import Hardware, choose
    from unitune.local.jobfiles import JobFiles
    from unitune.local.models import resolve
    from unitune.local.training import RunContext, common_args, load_model, load_tokenizer

    options = {"activation_checkpointing": True, "checkpoint_every_n_layers": 2,
               "activation_offload": True, "optimizer": "adamw_8bit", "device": "cpu"}
    spec = make_spec(fixed_batch_file, steps=1, options=options)
    ctx = RunContext(files=JobFiles(tmp_path / "job"), options=options, log=lambda _m: None)
    hw = Hardware("cpu", bf16=False, ram_gb=8)
    gpu = choose(spec, Hardware("cuda", gpus=1, gpu_name="H200", gpu_memory_gb=150, bf16=True),
                 options=options)
    assert common_args(spec, gpu, ctx, has_eval=False)["activation_checkpointing_kwargs"] == \
        {"use_reentrant": False, "every_n_layers": 2, "offload": True}
    eff = choose(spec, hw, options=options)
    assert (eff.checkpoint_every_n_layers, eff.activation_offload) == (2, False)
    assert eff.why["activation_offload"].startswith("not applied")
    args = common_args(spec, eff, ctx, has_eval=False)
    assert args["activation_checkpointing_kwargs"] == {"use_reentrant": False,
                                                       "every_n_layers": 2}
    assert args["optim"] == "adamw_8bit"
    path = resolve("unitune/tiny-chat").path
    tok = load_tokenizer(path)
    model = load_model(spec, path, eff, hw, ctx)
    rows, _ = load_rows(fixed_batch_file, "sft")
    trainer = SFTTrainer(model=model, args=SFTConfig(**args), train_dataset=Dataset.from_list(rows),
                         processing_class=tok, peft_config=peft_config(spec))
    trainer.train()
    layers = trainer.model.get_base_model().model.layers
    assert [layer.gradient_checkpointing for layer in layers] == [True, False]
    inner = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
    assert type(inner).__module__.startswith("bitsandbytes") and inner.args.optim_bits == 8


def test_missing_kernels_fall_back_and_the_run_says_so(tiny_home, fixed_batch_file, tmp_path):
    """Liger asked for on a CPU (its Triton kernels need a GPU) and a flash-attention kernel
    that is not installed: the job trains with SDPA and plain kernels, and its effective config,
    notes and events say so."""
    from .test_recipes import assert_falls, losses, run_recipe

    options = {"liger": True, "attn_implementation": "flash_attention_2"}
    spec = make_spec(fixed_batch_file, steps=5, options=options)
    result, rows = run_recipe(spec, tmp_path / "job")
    assert result["outcome"] == "succeeded"
    assert_falls(losses(rows), "fallback run")
    status = json.loads((tmp_path / "job" / "status.json").read_text())
    cfg = status["effective_config"]
    assert cfg["liger"] is False and "CUDA GPU" in cfg["why"]["liger"]
    assert cfg["attn_implementation"] == "sdpa"
    assert "flash_attention_2 did not load" in cfg["why"]["attn_implementation"]
    assert any("using sdpa" in n for n in status["notes"])
    events = (tmp_path / "job" / "events.jsonl").read_text()
    assert "did not load" in events
    assert cfg["predicted_memory_gb"] > 0 and status["peak_memory_gb"] > 0
    assert status["peak_memory_kind"] == "peak RSS"


def test_liger_that_cannot_import_is_not_applied(tiny_home, tmp_path, monkeypatch):
    """Absent (a CPU install), or installed without a working Triton: apply_liger leaves the
    model untouched and says why."""
    from transformers import AutoModelForCausalLM

    from unitune.local.models import resolve
    from unitune.local.training import apply_liger

    model = AutoModelForCausalLM.from_pretrained(resolve("unitune/tiny-chat").path)
    forward = type(model.model.norm).forward
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "liger_kernel", None)
        assert "does not import" in apply_liger(model)
    broken = tmp_path / "site" / "liger_kernel"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError(\"No module named 'triton'\")\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in [n for n in sys.modules if n.startswith("liger_kernel")]:
        monkeypatch.delitem(sys.modules, name)
    reason = apply_liger(model)
    assert "triton" in reason
    assert type(model.model.norm).forward is forward


def test_plan_of_a_packed_run_is_made_on_the_packed_rows(tiny_home, chat_file, tmp_path):
    """The recipe plans memory again on the rows it really packs, and a memory budget too small
    for keeping every activation turns checkpointing on (and the run still trains)."""
    from .test_recipes import run_recipe

    spec = make_spec(chat_file, steps=2, options={"memory_budget_gb": 1.0005})
    run_recipe(spec, tmp_path / "job")
    cfg = json.loads((tmp_path / "job" / "status.json").read_text())["effective_config"]
    assert cfg["packing"] is True and "row(s) of up to" in cfg["packed_rows"]
    assert cfg["memory_budget_gb"] == pytest.approx(1.0, abs=0.01)
    assert cfg["activation_checkpointing"] is True
    assert cfg["predicted_memory_gb"] <= 1.0005 + 1e-6 or "DOES NOT FIT" in \
        cfg["why"]["predicted_memory_gb"]
    assert Path(tmp_path / "job" / "adapter" / "adapter_config.json").exists()
