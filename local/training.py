"""What the SFT and DPO recipes share: loading the model, the trainer arguments every recipe sets
the same way, and the callback that turns trainer logs into the job's files.

The recipes themselves (`sft.py`, `dpo.py`) stay self-contained about their method.
"""
from __future__ import annotations

import os
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .jobfiles import JobFiles, now_iso

CANCEL = threading.Event()  # set by the worker's SIGTERM handler

GENERATION_TAG = re.compile(r"{%-?\s*generation\s*-?%}")


@dataclass
class RunContext:
    """Everything a recipe needs besides the spec."""

    files: JobFiles
    options: dict[str, Any]
    resume: bool = False
    rank: int = 0
    world_size: int = 1
    log: Any = print
    notes: list[str] = field(default_factory=list)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def torch_dtype(precision: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(spec, path: str, eff, hw, ctx: RunContext):
    """Base model in the chosen precision (quantized for qlora), on the right device."""
    import torch
    from transformers import AutoModelForCausalLM

    from .adapters import quantization_config

    full = spec.adapter.type == "full"
    # adapters: the frozen base can live in the compute dtype; full fine-tuning keeps fp32 master
    # weights and trains under autocast.
    dtype = torch.float32 if (full or eff.precision == "fp32") else torch_dtype(eff.precision)
    kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": eff.attn_implementation}
    quant = quantization_config(spec, torch.float32 if eff.precision == "fp32" else torch_dtype(eff.precision))
    if quant is not None:
        kwargs["quantization_config"] = quant
        if hw.device == "cuda":
            kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
        else:
            kwargs["device_map"] = "cpu"
    try:
        try:
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        except (ImportError, ValueError, OSError, RuntimeError) as exc:
            if kwargs["attn_implementation"] == "sdpa":
                raise
            # a flash / hub kernel that is missing or does not fit this GPU: SDPA instead
            fallback_note(ctx, eff, "attn_implementation", "sdpa",
                          f"{kwargs['attn_implementation']} did not load "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); "
                          "using sdpa")
            kwargs["attn_implementation"] = "sdpa"
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as exc:
        from ..errors import UnituneError

        raise UnituneError(f"cannot load model from {path}: {str(exc).splitlines()[0][:300]}",
                           hint="check that the directory holds config.json and weights "
                                "(*.safetensors) saved with save_pretrained") from exc
    if eff.liger:
        reason = apply_liger(model)
        if reason:
            fallback_note(ctx, eff, "liger", False, f"Liger not applied ({reason}); plain "
                                                   "kernels")
    if quant is not None:
        from peft import prepare_model_for_kbit_training

        quantized = sorted({type(m).__name__ for m in model.modules()
                            if type(m).__name__ in ("Linear4bit", "Linear8bitLt")})
        n_quantized = sum(1 for m in model.modules() if type(m).__name__ in quantized)
        if ctx.is_main:
            ctx.files.update_status(quantized_modules={"types": quantized, "count": n_quantized})
            ctx.files.event(f"base quantized: {n_quantized} {'/'.join(quantized)} layers")

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=eff.activation_checkpointing)
    model.config.use_cache = False
    return model


def fallback_note(ctx: RunContext, eff, key: str, value: Any, note: str) -> None:
    """Record that a speed feature fell back: the effective config, a note and an event."""
    setattr(eff, key, value)
    eff.why[key] = note
    ctx.notes.append(note)
    if ctx.is_main:
        ctx.files.event(note, level="warning")


def apply_liger(model) -> str | None:
    """Patch `model` (before PEFT wraps it) with Liger Kernel's fused RMSNorm, RoPE and SwiGLU
    through transformers' own integration. Liger's fused linear cross-entropy is left out: TRL's
    fused LM head already computes the loss without the logits tensor. Returns None when applied,
    else why not (Liger absent, Triton absent, an unsupported family, a failing patch)."""
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
        from transformers.integrations.liger import apply_liger_kernel
    except Exception as exc:  # noqa: BLE001 - ImportError, or Triton failing at import
        return f"liger-kernel does not import: {type(exc).__name__}: {str(exc)[:120]}"
    model_type = getattr(model.config, "model_type", None)
    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        return f"no Liger kernels for model type {model_type}"
    try:
        apply_liger_kernel(model, {"fused_linear_cross_entropy": False, "cross_entropy": False,
                                   "rope": True, "rms_norm": True, "swiglu": True})
    except Exception as exc:  # noqa: BLE001 - a patch that does not fit this transformers
        return f"{type(exc).__name__}: {str(exc)[:160]}"
    return None


def supports_assistant_mask(tokenizer) -> bool:
    return bool(tokenizer.chat_template and GENERATION_TAG.search(tokenizer.chat_template))


def split_validation(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    idx = list(range(len(rows)))
    random.Random(seed).shuffle(idx)
    n_val = max(1, int(round(len(rows) * fraction)))
    val = set(idx[:n_val])
    return [r for i, r in enumerate(rows) if i not in val], [r for i, r in enumerate(rows) if i in val]


def common_args(spec, eff, ctx: RunContext, *, has_eval: bool) -> dict[str, Any]:
    """TrainingArguments fields both recipes set identically."""
    hp = spec.hyperparameters
    opts = ctx.options
    args: dict[str, Any] = dict(
        output_dir=str(ctx.files.checkpoints),
        per_device_train_batch_size=eff.per_device_batch_size,
        per_device_eval_batch_size=eff.per_device_batch_size,
        gradient_accumulation_steps=eff.gradient_accumulation_steps,
        learning_rate=eff.learning_rate,
        num_train_epochs=eff.epochs,
        max_steps=eff.max_steps or -1,
        lr_scheduler_type=opts.get("lr_scheduler", "linear"),
        warmup_steps=hp.warmup_ratio if hp.warmup_ratio is not None else 0.0,
        weight_decay=hp.weight_decay if hp.weight_decay is not None else 0.0,
        seed=eff.seed,
        data_seed=eff.seed,
        logging_steps=int(opts.get("logging_steps", 1)),
        save_strategy="steps",
        save_steps=int(opts.get("save_steps", 50)),
        save_total_limit=int(opts.get("keep_checkpoints", 2)),
        report_to="none",
        disable_tqdm=True,
        bf16=eff.precision == "bf16",
        fp16=eff.precision == "fp16",
        use_cpu=eff.device == "cpu",
        activation_checkpointing=eff.activation_checkpointing,
        dataloader_num_workers=0,
        max_length=eff.max_length,
    )
    if eff.activation_checkpointing:
        ckpt_kwargs: dict[str, Any] = {"use_reentrant": False}
        if eff.checkpoint_every_n_layers > 1:  # transformers' partial checkpointing
            ckpt_kwargs["every_n_layers"] = eff.checkpoint_every_n_layers
        if eff.activation_offload:  # checkpointed inputs in pinned host memory
            ckpt_kwargs["offload"] = True
        args["activation_checkpointing_kwargs"] = ckpt_kwargs
    args["optim"] = eff.optimizer
    if eff.torch_compile:
        args["torch_compile"] = True
    if has_eval:
        args["eval_strategy"] = "steps"
        args["eval_steps"] = int(opts.get("eval_steps", args["save_steps"]))
    if ctx.world_size > 1 and eff.device == "cpu":
        args["ddp_backend"] = "gloo"
    return args


METRIC_KEYS = {"loss": "train_loss", "eval_loss": "valid_loss",
               "mean_token_accuracy": "train_token_accuracy",
               "eval_mean_token_accuracy": "valid_token_accuracy", "learning_rate": "learning_rate",
               "epoch": "epoch"}
SUMMARY_KEYS = ("train_runtime", "train_samples_per_second", "train_steps_per_second",
                "train_loss", "total_flos")


def make_callback(ctx: RunContext, tokens_offset: int = 0):
    """A TrainerCallback writing metrics.jsonl / status.json and honouring a cancel request."""
    from transformers import TrainerCallback

    files = ctx.files

    class JobFilesCallback(TrainerCallback):
        def __init__(self) -> None:
            self.t0 = time.monotonic()
            self.start_step = 0
            self.cancelled = False
            self.last_log_elapsed = 0.0
            self.c0 = time.process_time()
            self.last_log_cpu = 0.0
            self.counter = None  # set by the recipe: a TokenCounter around the data collator

        def on_train_begin(self, args, state, control, **kw):
            self.t0 = time.monotonic()
            self.c0 = time.process_time()
            self.start_step = state.global_step
            if ctx.is_main:
                files.update_status(status="running", raw_status="training",
                                    total_steps=state.max_steps, step=state.global_step)
                files.event(f"training started at step {state.global_step} of {state.max_steps}")

        def on_step_end(self, args, state, control, **kw):
            want = CANCEL.is_set() or files.cancel_flag.exists()
            if ctx.world_size > 1:  # every rank must stop at the same step
                import torch
                import torch.distributed as dist

                if dist.is_available() and dist.is_initialized():
                    flag = torch.tensor([1.0 if want else 0.0])
                    if dist.get_backend() == "nccl":
                        flag = flag.cuda()
                    dist.all_reduce(flag)
                    want = bool(flag.item() > 0)
            if want and not self.cancelled:
                self.cancelled = True
                control.should_save = True
                control.should_training_stop = True
                if ctx.is_main:
                    files.update_status(status="cancelling", raw_status="cancelling")
                    files.event(f"cancel requested: saving a checkpoint at step {state.global_step}")

        def on_log(self, args, state, control, logs=None, **kw):
            logs = dict(logs or {})
            if not ctx.is_main:
                return
            if any(k in logs for k in SUMMARY_KEYS) and "loss" not in logs:
                files.event("training finished", data={k: logs[k] for k in logs})
                return
            row: dict[str, Any] = {c: None for c in ("step", "epoch", "train_loss", "valid_loss",
                                                     "train_token_accuracy", "valid_token_accuracy",
                                                     "learning_rate", "tokens_seen")}
            row["step"] = state.global_step
            for key, col in METRIC_KEYS.items():
                if key in logs:
                    row[col] = logs.pop(key)
            if "num_tokens" in logs:
                trl_tokens = int(logs.pop("num_tokens"))
                if self.counter is not None and ctx.world_size == 1:
                    # real tokens: TRL's padding-free count includes the bucket padding
                    done = (state.global_step - self.start_step) * args.gradient_accumulation_steps
                    row["tokens_seen"] = self.counter.consumed(done) + tokens_offset
                else:
                    row["tokens_seen"] = trl_tokens + tokens_offset
            elapsed = time.monotonic() - self.t0
            self.last_log_elapsed = elapsed
            self.last_log_cpu = time.process_time() - self.c0
            row["elapsed_s"] = round(elapsed, 3)
            for key, value in logs.items():  # extras: grad_norm, entropy, rewards/*, logps/*, ...
                if isinstance(value, (int, float)):
                    row[key] = value
            files.append(files.metrics, row)
            done = state.global_step - self.start_step
            left = max(0, state.max_steps - state.global_step)
            eta = elapsed / done * left if done > 0 else None
            status = {"step": state.global_step, "total_steps": state.max_steps,
                      "epoch": state.epoch, "eta_seconds": eta}
            if row["train_loss"] is not None:
                status["latest_loss"] = row["train_loss"]
            files.update_status(**status)

        def on_save(self, args, state, control, **kw):
            if ctx.is_main:
                files.event(f"checkpoint saved at step {state.global_step}",
                            data={"checkpoint": str(files.checkpoints / f"checkpoint-{state.global_step}")})

    from ..tracking.trainer import attach_trackers  # `tracking:` → MLflow/TensorBoard/W&B

    return attach_trackers(JobFilesCallback(), ctx)


def tokens_at(files: JobFiles, step: int) -> int:
    """tokens_seen recorded at `step` (TRL's num_tokens restarts at 0 after a resume)."""
    from .jobfiles import read_jsonl

    best = 0
    for row in read_jsonl(files.metrics):
        if row.get("step", 0) <= step and row.get("tokens_seen") is not None:
            best = max(best, int(row["tokens_seen"]))
    return best


def truncate_metrics_after(files: JobFiles, step: int) -> None:
    """Drop metric rows past the checkpoint we resume from (they will be recomputed)."""
    from .jobfiles import read_jsonl
    import json

    rows = [r for r in read_jsonl(files.metrics) if r.get("step", 0) <= step]
    tmp = files.metrics.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, files.metrics)


def resume_point(ctx: RunContext) -> tuple[str | None, int]:
    """(checkpoint path or None, tokens offset) and tidy metrics for a resumed run."""
    if not ctx.resume:
        return None, 0
    ckpt = ctx.files.last_checkpoint()
    if ckpt is None:
        if ctx.is_main:
            ctx.files.event("no checkpoint found: starting from step 0", level="warning")
            if ctx.files.metrics.exists():
                truncate_metrics_after(ctx.files, 0)
        return None, 0
    step = int(ckpt.name.split("-", 1)[1])
    offset = tokens_at(ctx.files, step)
    if ctx.is_main:
        truncate_metrics_after(ctx.files, step)
        ctx.files.event(f"resuming from {ckpt.name}", data={"checkpoint": str(ckpt)})
    return str(ckpt), offset


def finish(trainer, tokenizer, ctx: RunContext, callback) -> dict[str, Any]:
    """Save the final adapter (or the cancel checkpoint) and say how the run ended."""
    if callback.cancelled:
        ckpt = ctx.files.last_checkpoint()
        return {"outcome": "cancelled", "checkpoint": str(ckpt) if ckpt else None,
                "step": trainer.state.global_step}
    trainer.save_model(str(ctx.files.adapter))
    if ctx.is_main:
        tokenizer.save_pretrained(str(ctx.files.adapter))
    return {"outcome": "succeeded", "adapter": str(ctx.files.adapter),
            "step": trainer.state.global_step}


def record_rank(ctx: RunContext, trainer, counter, callback) -> None:
    """Per-rank evidence that this process trained (used to check multi-process runs)."""
    import hashlib

    import torch

    from .jobfiles import write_json_atomic

    steps = trainer.state.global_step - callback.start_step
    tokens = counter.consumed(steps * trainer.args.gradient_accumulation_steps)
    h = hashlib.sha256()
    with torch.no_grad():
        for name, p in sorted(trainer.model.named_parameters()):
            if p.requires_grad:
                h.update(name.encode())
                h.update(p.detach().float().cpu().numpy().tobytes())
    write_json_atomic(ctx.files.ranks / f"rank{ctx.rank}.json", {
        "rank": ctx.rank, "world_size": ctx.world_size, "pid": os.getpid(),
        "steps": trainer.state.global_step, "local_tokens": tokens,
        "train_seconds": callback.last_log_elapsed, "train_cpu_seconds": callback.last_log_cpu,
        "trainable_digest": h.hexdigest(), "time": now_iso()})
