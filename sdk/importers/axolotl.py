"""Axolotl YAML → unitune spec.

Axolotl configs are flat: model (`base_model`, `load_in_4bit`), adapter (`adapter`, `lora_*`),
data (`datasets`, `val_set_size`), training (`micro_batch_size`, `num_epochs`, …) and many
runtime switches. Everything with a unitune equivalent is mapped; the local backend's options
(`backend_options.local`) take the runtime switches it shares (precision, packing, attention,
scheduler, checkpoint intervals); the rest is listed with the reason.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import SpecError
from .common import (INFRA_REASON, ConfigSource, fill_cloud_models, finish, is_empty,
                     map_epochs, set_data, slug)
from .result import ImportResult

# Axolotl dataset `type` → unitune input format
DATASET_TYPES = {"alpaca": "alpaca", "sharegpt": "sharegpt", "chat_template": "messages",
                 "chat_template.default": "messages", "completion": None,
                 "input_output": None}

UNITUNE_ADAPTERS = ("lora", "qlora", "ia3")
INFRA_PREFIXES = ("wandb_", "mlflow_", "comet_", "hub_", "push_", "swanlab_", "trackio_")
INFRA_KEYS = {"output_dir", "dataset_prepared_path", "resume_from_checkpoint", "auto_resume_from_"
              "checkpoints", "save_safetensors", "use_tensorboard", "use_wandb", "use_mlflow",
              "logging_dir", "dataset_processes", "dataloader_num_workers",
              "dataloader_pin_memory", "dataloader_prefetch_factor", "save_first_step",
              "use_otel_metrics", "otel_metrics_host", "otel_metrics_port"}
REASONS = {
    "optimizer": "the local backend trains with transformers' default optimizer (AdamW); "
                 "cloud vendors choose their own",
    "tf32": "a CUDA matmul switch; the local backend picks precision with backend_options.local."
            "precision",
    "eval_sample_packing": "evaluation follows the training packing setting in unitune",
    "pad_to_sequence_len": "the local backend pads packed micro-batches itself "
                           "(backend_options.local.pad_to_multiple_of)",
    "evals_per_epoch": "unitune sets intervals in steps: backend_options.local.eval_steps",
    "saves_per_epoch": "unitune sets intervals in steps: backend_options.local.save_steps",
    "loss_watchdog_threshold": "no loss watchdog in unitune (watch the job: `unitune watch ID`)",
    "loss_watchdog_patience": "no loss watchdog in unitune (watch the job: `unitune watch ID`)",
    "early_stopping_patience": "no early stopping in unitune",
    "special_tokens": "unitune keeps the tokenizer's own special tokens",
    "tokens": "unitune does not add tokens to the vocabulary",
    "model_type": "unitune loads the model with AutoModelForCausalLM",
    "tokenizer_type": "unitune loads the tokenizer with AutoTokenizer",
    "base_model_config": "unitune reads the config beside the model",
    "trust_remote_code": "the local backend never runs code from a model repository",
    "lora_model_dir": "unitune starts a new adapter (it does not continue from an existing one)",
    "chat_template": "the local backend formats chats with the base model's own chat template; "
                     "cloud vendors apply theirs",
    "xformers_attention": "use backend_options.local.attn_implementation (sdpa, "
                          "flash_attention_2, eager)",
    "warmup_steps": "unitune takes warmup as a ratio (hyperparameters.warmup_ratio)",
    "max_grad_norm": "the local backend keeps transformers' default gradient clipping (1.0)",
    "lora_modules_to_save": "unitune trains only the adapter's layers",
    "lora_fan_in_fan_out": "set automatically by PEFT for the model's layer type",
    "strict": "an Axolotl config-parsing switch",
    "debug": "an Axolotl logging switch",
    "fsdp_config": "unitune's FSDP strategy uses its own settings "
                   "(backend_options.local.strategy: fsdp)",
    "fsdp_version": "unitune's FSDP strategy uses its own settings",
    "gradient_checkpointing_kwargs": "unitune decides how activations are recomputed",
    "group_by_length": "no length grouping in unitune (the local backend packs SFT examples)",
    "ddp_timeout": "launcher timeout; unitune uses torchrun's default",
}


def import_axolotl(path: str | Path, *, out_dir: Path, name: str | None = None,
                   data: str | None = None) -> ImportResult:
    src = ConfigSource(path, "axolotl")
    cfg, r, base_dir, used, take = src.cfg, src.result, src.base_dir, src.used, src.take

    # -- model & method --------------------------------------------------------------------------
    base = take("base_model")
    if not base:
        raise SpecError(f"{path}: no `base_model`", file=str(path),
                        hint="is this an Axolotl config? it names the model in `base_model`")
    r.set("name", slug(Path(path).stem), None)
    r.set("backend", "local")
    r.set("models.local", str(base), "base_model")
    rl = take("rl")
    if rl in (None, False):
        method = "sft"
    elif str(rl).lower() == "dpo":
        method = "dpo"
        r.set("method", "dpo", "rl")
    else:
        raise SpecError(f"{path}: rl: {rl} has no unitune equivalent (unitune trains sft and dpo)",
                        file=str(path), field="rl", hint="import an SFT or DPO recipe")
    for key in ("rl_beta", "dpo_beta"):
        beta = take(key)
        if beta is not None:
            r.set("hyperparameters.beta", float(beta), key)

    # -- adapter ---------------------------------------------------------------------------------
    adapter = take("adapter")
    load4, load8 = bool(take("load_in_4bit")), bool(take("load_in_8bit"))
    dora, rslora = bool(take("peft_use_dora")), bool(take("peft_use_rslora"))
    if adapter is None:
        kind = "full"
        if load4 or load8:
            raise SpecError(f"{path}: load_in_{'4' if load4 else '8'}bit without an adapter "
                            "(a quantized base cannot be fully fine-tuned)", file=str(path),
                            field="adapter", hint="set `adapter: qlora` or drop the quantization")
        r.set("adapter.type", "full", "adapter", note="no adapter: full fine-tuning")
    elif str(adapter).lower() not in UNITUNE_ADAPTERS:
        raise SpecError(f"{path}: adapter: {adapter} has no unitune equivalent", file=str(path),
                        field="adapter", hint="unitune adapters: lora, qlora, dora, rslora, full, "
                                              "prefix, p_tuning, prompt_tuning, ia3")
    else:
        kind = str(adapter).lower()
        if kind == "lora" and (load4 or load8):
            kind = "qlora"
            note = f"LoRA on a {'4' if load4 else '8'}-bit base is unitune's qlora"
        else:
            note = None
        if kind == "lora" and dora:
            kind, note = "dora", "peft_use_dora"
        elif kind == "lora" and rslora:
            kind, note = "rslora", "peft_use_rslora"
        elif kind == "qlora" and (dora or rslora):
            r.skip("peft_use_dora" if dora else "peft_use_rslora", True,
                   "unitune's qlora is plain LoRA on the quantized base")
        r.set("adapter.type", kind, "adapter", note=note)
        if kind == "qlora":
            r.set("adapter.bits", 8 if load8 and not load4 else 4,
                  "load_in_8bit" if load8 and not load4 else "load_in_4bit")
    lora_keys = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules",
                 "lora_target_linear")
    if kind in ("lora", "qlora", "dora", "rslora"):
        for key, target, cast in (("lora_r", "adapter.r", int), ("lora_alpha", "adapter.alpha", int),
                                  ("lora_dropout", "adapter.dropout", float)):
            value = take(key)
            if value is not None:
                r.set(target, cast(value), key)
        modules = take("lora_target_modules")
        if take("lora_target_linear"):
            r.set("adapter.target_modules", "all-linear", "lora_target_linear")
            if modules:
                r.skip("lora_target_modules", modules, "lora_target_linear: true already adapts "
                       "every linear layer")
        elif modules:
            r.set("adapter.target_modules", list(modules) if isinstance(modules, list)
                  else str(modules), "lora_target_modules")
    else:
        for key in lora_keys:
            value = take(key)
            if value is not None:
                r.skip(key, value, f"no LoRA adapter in this recipe (adapter: {kind})")

    # -- data ------------------------------------------------------------------------------------
    datasets = take("datasets")
    if not datasets:
        raise SpecError(f"{path}: no `datasets`", file=str(path), field="datasets",
                        hint="an Axolotl config lists its training data under `datasets`")
    if not isinstance(datasets, list):
        datasets = [datasets]
    first = datasets[0] if isinstance(datasets[0], dict) else {"path": datasets[0]}
    _dataset(r, first, "train", "datasets[0]", base_dir, out_dir, method)
    for i, extra in enumerate(datasets[1:], start=1):
        r.skip(f"datasets[{i}]", extra.get("path") if isinstance(extra, dict) else extra,
               "unitune trains on one file: concatenate the exported datasets into one JSONL",
               kind="data")
    tests = take("test_datasets")
    val = take("val_set_size")
    if tests:
        t0 = tests[0] if isinstance(tests, list) else tests
        t0 = t0 if isinstance(t0, dict) else {"path": t0}
        _dataset(r, t0, "validation", "test_datasets[0]", base_dir, out_dir, method)
        if val:
            r.skip("val_set_size", val, "test_datasets already give the validation set")
    elif val:
        frac = float(val)
        if 0 < frac <= 0.5:
            r.set("data.validation", frac, "val_set_size")
        elif frac > 0:
            r.skip("val_set_size", val, "unitune splits off a fraction in (0, 0.5]")

    # -- hyperparameters -------------------------------------------------------------------------
    seq = take("sequence_len")
    if seq is not None:
        r.set("hyperparameters.max_seq_length", int(seq), "sequence_len")
    micro, gas = take("micro_batch_size"), take("gradient_accumulation_steps")
    total = take("batch_size")
    if micro is not None:
        eff = int(micro) * int(gas or 1)
        r.set("hyperparameters.batch_size", eff, "micro_batch_size",
              note=f"micro_batch_size {micro} × gradient_accumulation_steps {gas or 1} (per "
                   "process; Axolotl multiplies by the number of GPUs too)")
        r.set("backend_options.local.per_device_batch_size", int(micro), "micro_batch_size")
        if gas is not None:
            r.set("hyperparameters.gradient_accumulation_steps", int(gas),
                  "gradient_accumulation_steps")
        if total is not None:
            r.skip("batch_size", total, "micro_batch_size × gradient_accumulation_steps "
                   "already set the batch")
    elif total is not None:
        r.set("hyperparameters.batch_size", int(total), "batch_size")
        if gas is not None:
            r.set("hyperparameters.gradient_accumulation_steps", int(gas),
                  "gradient_accumulation_steps")
    map_epochs(r, take, "num_epochs")
    for key, target, cast in (("max_steps", "hyperparameters.max_steps", int),
                              ("learning_rate", "hyperparameters.learning_rate", float),
                              ("warmup_ratio", "hyperparameters.warmup_ratio", float),
                              ("weight_decay", "hyperparameters.weight_decay", float),
                              ("seed", "hyperparameters.seed", int)):
        value = take(key)
        if value is not None:
            if key == "max_steps" and int(value) < 1:
                continue
            r.set(target, cast(value), key)

    # -- runtime switches the local backend shares -----------------------------------------------
    local = "backend_options.local."
    sched = take("lr_scheduler")
    if sched is not None:
        if str(sched) in _HF_SCHEDULERS:
            r.set(local + "lr_scheduler", str(sched), "lr_scheduler")
        else:
            r.skip("lr_scheduler", sched, "an Axolotl-specific scheduler; the local backend "
                   "takes transformers' lr_scheduler_type names")
    bf16, fp16 = take("bf16"), take("fp16")
    if bf16 in (True, "true", "True"):
        r.set(local + "precision", "bf16", "bf16")
    elif str(bf16).lower() == "auto":
        r.set(local + "precision", "auto", "bf16")
    elif fp16 in (True, "true", "True"):
        r.set(local + "precision", "fp16", "fp16")
    gc = take("gradient_checkpointing")
    if isinstance(gc, bool):
        r.set(local + "activation_checkpointing", gc, "gradient_checkpointing")
    elif gc is not None:
        r.skip("gradient_checkpointing", gc, "unitune takes true or false")
    packing = take("sample_packing")
    if isinstance(packing, bool):
        r.set(local + "packing", packing, "sample_packing")
    attn = take("attn_implementation")
    if take("flash_attention"):
        r.set(local + "attn_implementation", "flash_attention_2", "flash_attention")
    elif take("sdp_attention"):
        r.set(local + "attn_implementation", "sdpa", "sdp_attention")
    elif attn:
        r.set(local + "attn_implementation", str(attn), "attn_implementation")
    for key, opt in (("logging_steps", "logging_steps"), ("save_steps", "save_steps"),
                     ("eval_steps", "eval_steps"), ("save_total_limit", "keep_checkpoints")):
        value = take(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            r.set(local + opt, value, key)
        elif value is not None:
            r.skip(key, value, "unitune takes a whole number of steps here")
    if take("deepspeed"):
        r.set(local + "strategy", "deepspeed", "deepspeed",
              note="unitune's DeepSpeed strategy with its own settings; the JSON is not read")
    elif take("fsdp"):
        r.set(local + "strategy", "fsdp", "fsdp", note="unitune's FSDP strategy with its own "
              "settings")
    tio = take("train_on_inputs")
    if tio is False:
        r.skip("train_on_inputs", False, "unitune computes the loss on assistant turns only "
               "where the chat template marks them — the same intent", kind="equivalent")
    elif tio:
        r.skip("train_on_inputs", tio, "unitune trains on assistant turns only")

    # -- everything else: listed with the reason -------------------------------------------------
    for key, value in cfg.items():
        if key in used:
            continue
        if is_empty(value):
            r.empty.append(key)
        elif key in INFRA_KEYS or key.startswith(INFRA_PREFIXES):
            r.skip(key, value, INFRA_REASON, kind="infrastructure")
        else:
            r.skip(key, value, REASONS.get(key, "no unitune equivalent; the local backend "
                                                "leaves it at TRL/transformers' default"))
    r.account_for(cfg, used)
    fill_cloud_models(r, method)
    finish(r, name=name, data=data, out_dir=out_dir)
    return r


_HF_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                  "constant_with_warmup", "inverse_sqrt", "reduce_lr_on_plateau",
                  "cosine_with_min_lr", "warmup_stable_decay")


def _dataset(r: ImportResult, ds: dict[str, Any], which: str, where: str, base_dir: Path,
             out_dir: Path, method: str) -> None:
    ref = ds.get("data_files") if isinstance(ds.get("data_files"), str) else ds.get("path")
    if not ref:
        raise SpecError(f"{r.source}: {where} has no `path`", file=r.source, field=where,
                        hint="each dataset names its `path`")
    dtype = ds.get("type")
    fmt = None
    if isinstance(dtype, str):
        if dtype in DATASET_TYPES:
            fmt = DATASET_TYPES[dtype]
            if fmt is None:
                r.skip(f"{where}.type", dtype, "raw-text / template datasets have no unitune "
                       "format; unitune trains on chat, instruction or preference examples",
                       kind="data")
        elif method == "sft":
            r.skip(f"{where}.type", dtype, "an Axolotl prompt strategy unitune does not know; "
                   "the format is detected from the file (`unitune validate`)", kind="data")
    if fmt == "messages" and ds.get("field_messages") not in (None, "messages"):
        r.skip(f"{where}.field_messages", ds.get("field_messages"),
               "unitune reads chats from `messages`: rename that key when you export the data",
               kind="data")
    for sub in ds:
        if sub in ("path", "type", "data_files", "split", "field_messages", "ds_type"):
            continue
        r.skip(f"{where}.{sub}", ds[sub], "a dataset-loading option; unitune reads the JSONL "
               "as it is", kind="data")
    set_data(r, which, str(ref), fmt if method == "sft" else None, base_dir=base_dir,
             out_dir=out_dir, source=f"{where}.path", hub_split=ds.get("split"))
    if fmt and method == "sft":
        r.set("data.format", fmt, f"{where}.type")
