"""PEFT configurations for every adapter type the spec names, and the quantization they need.

lora / dora / rslora / qlora go through `LoraConfig` (qlora adds a bitsandbytes base: 4-bit NF4 with
double quantization, or 8-bit via `adapter.bits`); prefix, p_tuning, prompt_tuning and ia3 have
their own PEFT configs; `full` trains every weight (no PEFT config).
"""
from __future__ import annotations

from typing import Any

from ..errors import SpecError

LORA_FAMILY = ("lora", "dora", "rslora", "qlora")


def target_modules(spec) -> Any:
    tm = spec.adapter.target_modules
    if tm is None:
        return "all-linear"  # PEFT excludes the output layer for "all-linear"
    names = [tm] if isinstance(tm, str) else list(tm)
    if any(n == "lm_head" or n.endswith(".lm_head") for n in names):
        raise SpecError("adapter.target_modules includes lm_head, which TRL 1.16 computes through "
                        "a fused LM-head loss and rejects", field="adapter.target_modules",
                        hint='leave target_modules unset ("all-linear") or drop lm_head')
    return tm if isinstance(tm, str) else names


def peft_config(spec):
    """The PEFT config for spec.adapter (None for `full`)."""
    import peft

    a = spec.adapter
    kind = a.type
    if kind == "full":
        return None
    if kind in LORA_FAMILY:
        return peft.LoraConfig(task_type="CAUSAL_LM", r=a.r, lora_alpha=a.effective_alpha,
                               lora_dropout=a.dropout, target_modules=target_modules(spec),
                               use_dora=kind == "dora", use_rslora=kind == "rslora", bias="none")
    if kind == "ia3":
        kwargs: dict[str, Any] = {"task_type": "CAUSAL_LM"}
        if a.target_modules is not None:
            kwargs["target_modules"] = target_modules(spec)
            kwargs["feedforward_modules"] = []
        return peft.IA3Config(**kwargs)
    if kind == "prefix":
        return peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=a.num_virtual_tokens)
    if kind == "p_tuning":
        return peft.PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=a.num_virtual_tokens,
                                        encoder_hidden_size=128)
    if kind == "prompt_tuning":
        return peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=a.num_virtual_tokens)
    raise SpecError(f"adapter.type {kind!r} is not supported by the local backend",
                    field="adapter.type", hint="use lora, qlora, dora, rslora, full, prefix, "
                    "p_tuning, prompt_tuning or ia3")


def quantization_config(spec, compute_dtype):
    """bitsandbytes config for qlora (None otherwise)."""
    if spec.adapter.type != "qlora":
        return None
    from transformers import BitsAndBytesConfig

    if spec.adapter.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute_dtype,
                              bnb_4bit_quant_storage=compute_dtype)


def describe(spec) -> dict[str, Any]:
    """What the adapter maps to, for `plan` (no heavy imports)."""
    a = spec.adapter
    if a.type in LORA_FAMILY:
        row = {"peft": "LoraConfig", "r": a.r, "lora_alpha": a.effective_alpha,
               "lora_dropout": a.dropout,
               "target_modules": a.target_modules if a.target_modules is not None else "all-linear"}
        if a.type == "dora":
            row["use_dora"] = True
        if a.type == "rslora":
            row["use_rslora"] = True
        if a.type == "qlora":
            row["quantization"] = ("bitsandbytes 8-bit" if a.bits == 8 else
                                   "bitsandbytes 4-bit NF4, double quantization")
        return row
    if a.type == "full":
        return {"peft": None, "trainable": "all parameters"}
    if a.type == "ia3":
        return {"peft": "IA3Config"}
    name = {"prefix": "PrefixTuningConfig", "p_tuning": "PromptEncoderConfig",
            "prompt_tuning": "PromptTuningConfig"}[a.type]
    return {"peft": name, "num_virtual_tokens": a.num_virtual_tokens}
