"""The memory plan's activation model against a measurement: the bytes autograd keeps for
backward (torch.autograd.graph.saved_tensors_hooks), on the real stack (transformers model, PEFT
LoRA, TRL's fused LM head, SDPA, autocast), for model shapes the coefficients were not fitted on,
with and without (partial) activation checkpointing and with packed rows (measured: within
0.35%)."""
from __future__ import annotations

import pytest

from unitune.local.memory import predict_memory, shape_from_config


def saved_bytes(model, batch: dict, autocast: bool) -> int:
    """Bytes of the distinct storages autograd saves during one forward (parameters excluded)."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            seen[s.data_ptr()] = max(seen.get(s.data_ptr(), 0), s.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            model(**batch)
    return sum(seen.values())


def build(cfg: dict, *, adapter: str, precision: str, every_n: int = 0, r: int = 16):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(0)
    kind = cfg["model_type"]
    config = (Qwen2Config if kind == "qwen2" else LlamaConfig)(
        **{k: v for k, v in cfg.items() if k != "model_type"}, attn_implementation="sdpa")
    model = (Qwen2ForCausalLM if kind == "qwen2" else LlamaForCausalLM)(config)
    if adapter != "full" and precision == "bf16":
        model = model.to(torch.bfloat16)  # the recipe loads an adapter's frozen base in bf16
    add_fused_lm_head(model)
    if every_n:
        model.activation_checkpointing_enable({"use_reentrant": False}, every_n_layers=every_n)
    if adapter != "full":
        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=r, lora_alpha=2 * r,
                                                 lora_dropout=0.05, target_modules="all-linear"))
        if every_n:
            model.enable_input_require_grads()
    model.train()
    return model


def packed_batch(lengths: list[int], vocab: int) -> dict:
    import torch

    g = torch.Generator().manual_seed(1)
    total = sum(lengths)
    ids = torch.randint(0, vocab, (1, total), generator=g)
    pos = torch.cat([torch.arange(n) for n in lengths])[None]
    return {"input_ids": ids, "position_ids": pos, "labels": ids.clone(), "fused_lm_head": True}


SHAPES = {  # none of these was used to fit ACTIVATION_BYTES
    "qwen2": dict(model_type="qwen2", hidden_size=112, intermediate_size=288, num_hidden_layers=3,
                  num_attention_heads=7, num_key_value_heads=1, vocab_size=640,
                  tie_word_embeddings=True),
    "llama": dict(model_type="llama", hidden_size=80, intermediate_size=352, num_hidden_layers=4,
                  num_attention_heads=5, num_key_value_heads=5, vocab_size=512,
                  tie_word_embeddings=False),
}
CASES = [  # (shape, adapter, precision, checkpoint every, packed lengths)
    ("qwen2", "lora", "bf16", 0, [448]),
    ("llama", "lora", "bf16", 0, [320]),
    ("qwen2", "lora", "fp32", 0, [448]),
    ("qwen2", "full", "bf16", 0, [448]),
    ("llama", "full", "fp32", 0, [320]),
    ("qwen2", "lora", "bf16", 1, [448]),
    ("llama", "lora", "bf16", 2, [320]),
    ("qwen2", "lora", "bf16", 0, [200, 150, 98]),  # three packed examples: SDPA gets a mask
]


@pytest.mark.parametrize("name,adapter,precision,every_n,lengths", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}-ckpt{c[3]}-{len(c[4])}seq" for c in CASES])
def test_predicted_activations_match_what_autograd_keeps(name, adapter, precision, every_n,
                                                         lengths):
    cfg = SHAPES[name]
    model = build(cfg, adapter=adapter, precision=precision, every_n=every_n)
    measured = saved_bytes(model, packed_batch(lengths, cfg["vocab_size"]),
                           autocast=precision == "bf16")
    shape = shape_from_config(cfg)
    predicted = predict_memory(shape, adapter=adapter, r=16, precision=precision, rows=1,
                               seq_len=sum(lengths), checkpoint_every=every_n,
                               masked=len(lengths) > 1, attention="sdpa", device="cpu")
    assert predicted.activations == pytest.approx(measured, rel=0.01), \
        (predicted.activations, measured)
