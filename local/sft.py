"""The SFT recipe: one self-contained run of TRL's SFTTrainer (+ PEFT) for a JobSpec.

Data: any SFT format the dataset engine reads, rendered as conversational rows. Loss: on the
assistant tokens (end-of-turn token included) when the chat template marks them with
`{% generation %}`; otherwise on the final assistant turn only, through a prompt/completion split
(earlier assistant turns become context), and the run says so.
"""
from __future__ import annotations

from typing import Any

from .training import RunContext

MASK_FALLBACK_NOTE = (
    "the chat template has no {% generation %} markers, so TRL cannot build an assistant-token "
    "mask; each example is split into prompt (all turns before the last assistant turn) and "
    "completion (the last assistant turn) and the loss covers the completion only. Loss on every "
    "token would also train the model to write user turns.")


def to_prompt_completion(rows: list[dict]) -> list[dict]:
    out = []
    for row in rows:
        msgs = row["messages"]
        last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
        if last is None or last == 0:
            continue
        out.append({"prompt": msgs[:last], "completion": [msgs[last]]})
    return out


class TokenCounter:
    """Wraps a data collator to count the real tokens (no padding) of each micro-batch it builds.

    The data loader may build a batch ahead of the one being trained on, so `consumed(n)` sums
    only the first n micro-batches.
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[int] = []

    def __call__(self, features):
        batch = self.inner(features)
        if features and "input_ids" in features[0]:
            self.calls.append(sum(len(f["input_ids"]) for f in features))
        elif features and "chosen_ids" in features[0]:  # DPO: prompt+chosen and prompt+rejected
            self.calls.append(sum(2 * len(f["prompt_ids"]) + len(f["chosen_ids"])
                                  + len(f["rejected_ids"]) for f in features))
        elif "attention_mask" in batch:
            self.calls.append(int(batch["attention_mask"].sum()))
        else:
            self.calls.append(sum(int(v.numel()) for k, v in batch.items()
                                  if k.endswith("input_ids") and hasattr(v, "numel")))
        return batch

    def consumed(self, micro_batches: int) -> int:
        return sum(self.calls[:micro_batches])


def _bfd_bins(lengths: list[int], capacity: int) -> int:
    """How many rows best-fit-decreasing packing needs for these lengths (TRL's strategy)."""
    import bisect

    free: list[int] = []  # sorted remaining capacities
    for n in sorted(lengths, reverse=True):
        i = bisect.bisect_left(free, n)
        if i < len(free):
            left = free.pop(i) - n
        else:
            left = capacity - n
        bisect.insort(free, left)
    return len(free)


def pack_plan(tok, rows: list[dict], examples_per_step: int, max_length: int,
              sample: int = 2000) -> dict[str, Any]:
    """Packed-row length and rows per micro-step so a step sees about the requested examples.

    Rows are as long as the longest example (up to max_length), so packing truncates nothing
    that padding would keep and attention (quadratic in row length) costs no more than in a
    padded batch; the number of rows per micro-step is chosen from a best-fit-decreasing
    simulation on (a sample of) the real token lengths, so the effective batch stays the
    requested number of examples instead of silently growing to max_length / mean examples.
    """
    lengths = []
    for row in rows[:sample]:
        msgs = row.get("messages") or (row.get("prompt", []) + row.get("completion", []))
        ids = tok.apply_chat_template(msgs, tokenize=True, return_dict=False)
        lengths.append(max(1, min(len(ids), max_length)))
    if not lengths:
        return {"length": max_length, "rows": 1, "mean": 0.0, "longest": 0, "per_row": 1.0}
    longest = max(lengths)
    per_row = len(lengths) / _bfd_bins(lengths, longest)
    n_rows = max(1, round(examples_per_step / per_row))
    return {"length": longest, "rows": n_rows, "mean": sum(lengths) / len(lengths),
            "longest": longest, "per_row": per_row}


def micro_token_budget(hw, options: dict) -> int | None:
    """Most tokens one micro-step may hold (None: no limit).

    On CPUs, matrix multiplies are already efficient at a few hundred rows, while activation
    memory (kept because checkpointing is off) grows with every token: 1024 tokens per
    micro-step keeps memory below a padded, checkpointed batch at no measurable speed cost.
    """
    if "micro_tokens" in options:
        value = int(options["micro_tokens"])
        return value if value > 0 else None
    return 1024 if hw.device == "cpu" else None


def prepare(spec, ctx: RunContext, method: str, rows: list[dict] | None = None):
    """Shared set-up: hardware, model path, tokenizer, rows, effective config, model shape.

    `rows` (already in TRL's conversational shape) skips reading spec.data (benchmarks use it).
    """
    from transformers import AutoConfig

    from .data import load_rows
    from .hardware import choose, detect
    from .memory import shape_from_config
    from .models import resolve
    from .training import load_tokenizer, split_validation

    hw = detect(ctx.options.get("device"))
    resolved = resolve(spec.model_for("local"))
    try:
        config = AutoConfig.from_pretrained(resolved.path)
    except (OSError, ValueError) as exc:
        from ..errors import UnituneError

        raise UnituneError(f"cannot load model config from {resolved.path}: "
                           f"{str(exc).splitlines()[0][:300]}",
                           hint="point base_model at a valid model directory") from exc
    shape = shape_from_config(config)
    eff = choose(spec, hw, shape=shape, world_size=ctx.world_size, options=ctx.options)
    tok = load_tokenizer(resolved.path)
    if rows is None:
        rows, notes = load_rows(spec.data_path("train"), method)
        ctx.notes.extend(notes)
    val_rows: list[dict] = []
    if isinstance(spec.data.validation, float):
        rows, val_rows = split_validation(rows, spec.data.validation, eff.seed)
    elif spec.data.validation:
        val_rows, more = load_rows(spec.data_path("validation"), method)
        ctx.notes.extend(more)
    return hw, resolved, eff, tok, rows, val_rows, shape


def announce(ctx: RunContext, hw, resolved, eff, extra: dict[str, Any]) -> None:
    if not ctx.is_main:
        return
    ctx.log(f"hardware: {hw.describe()}")
    ctx.log(f"model: {resolved.requested} ({resolved.source}: {resolved.path})")
    ctx.log("effective config:")
    for line in eff.lines():
        ctx.log(line)
    for key, value in extra.items():
        ctx.log(f"{key:>28}: {value}")
    for note in ctx.notes:
        ctx.log(f"note: {note}")
    ctx.files.update_status(effective_config={**eff.to_dict(), **extra}, notes=ctx.notes,
                            hardware=hw.describe())
    ctx.files.event("effective config", data={**eff.to_dict(), **extra, "notes": ctx.notes})


def refresh_effective(ctx: RunContext, eff, extra: dict[str, Any]) -> None:
    """Rewrite the effective config in status.json after loading (a kernel may have fallen
    back)."""
    if ctx.is_main:
        ctx.files.update_status(effective_config={**eff.to_dict(), **extra}, notes=ctx.notes)


def peak_memory() -> tuple[float | None, str]:
    """This process's peak memory so far in GB: peak allocated GPU memory on CUDA (what the
    memory plan predicts), else the peak resident set size."""
    import resource
    import sys

    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 1e9, "cuda max_memory_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss * (1 if sys.platform == "darwin" else 1024) / 1e9, "peak RSS"


def plan_packing(spec, eff, hw, shape, tok, rows: list[dict],
                 options: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    """Packed rows per micro-step, micro-steps per step and the memory plan on those rows (it
    updates `eff`'s checkpointing and prediction): the SFTConfig fields to set and the lines for
    the effective config."""
    plan = pack_plan(tok, rows, eff.per_device_batch_size, eff.max_length)
    n_rows, accum = plan["rows"], eff.gradient_accumulation_steps
    budget = micro_token_budget(hw, options)
    if budget and n_rows > 1 and n_rows * plan["length"] > budget:
        # split the step into micro-steps: same examples per optimizer step, less memory
        per_micro = max(1, min(n_rows, budget // plan["length"]))
        split = max(1, round(n_rows / per_micro))
        n_rows, accum = per_micro, accum * split
    if shape is not None:  # the memory plan again, on the packed rows as they will be
        from .hardware import checkpointing_set, plan_for

        mem = plan_for(spec, eff, shape, hw, options, rows=n_rows, seq_len=plan["length"],
                       tokens_per_row=min(plan["length"], plan["per_row"] * plan["mean"]),
                       masked=plan["per_row"] > 1.0)
        eff.apply_plan(mem, forced=checkpointing_set(options))
        if mem.split > 1:
            n_rows, accum = mem.rows, accum * mem.split
    args: dict[str, Any] = dict(max_length=plan["length"], per_device_train_batch_size=n_rows,
                                gradient_accumulation_steps=accum)
    extra: dict[str, Any] = {
        "packed_rows": (f"{n_rows} row(s) of up to {plan['length']} tokens per device per "
                        f"micro-step x {accum} micro-step(s), ~{plan['per_row']:.1f} examples "
                        f"per row (~{n_rows * accum * plan['per_row']:.0f} examples per device "
                        f"per step; mean example {plan['mean']:.0f} tokens, longest "
                        f"{plan['longest']})")}
    # Fixed-size buckets for the flattened micro-batch: with ever-changing shapes, oneDNN's
    # primitive cache and the allocator grow every step on CPU (measured: +60% RSS, slower).
    multiple = int(options.get("pad_to_multiple_of", 64))
    if multiple > 0:
        args["pad_to_multiple_of"] = multiple
        extra["pad_to_multiple_of"] = multiple
    return args, extra


def run(spec, ctx: RunContext, rows: list[dict] | None = None) -> dict[str, Any]:
    from trl import SFTConfig, SFTTrainer

    from .training import common_args, load_model, supports_assistant_mask

    hw, resolved, eff, tok, rows, val_rows, shape = prepare(spec, ctx, "sft", rows)
    mask = supports_assistant_mask(tok)
    if not mask:
        rows, val_rows = to_prompt_completion(rows), to_prompt_completion(val_rows)
        ctx.notes.append(MASK_FALLBACK_NOTE)
    loss_on = ("assistant tokens (incl. end-of-turn)" if mask else
               "last assistant turn (prompt/completion split)")

    extra: dict[str, Any] = {"loss_on": loss_on, "adapter": spec.adapter.type}
    if eff.packing:
        packed, more = plan_packing(spec, eff, hw, shape, tok, rows, ctx.options)
        extra.update(more)
    args = common_args(spec, eff, ctx, has_eval=bool(val_rows))  # after the memory plan
    if eff.packing:
        args.update(packed)
    if spec.adapter.type == "qlora":
        extra["quantization"] = "8-bit" if spec.adapter.bits == 8 else "4-bit NF4 + double quant"
    announce(ctx, hw, resolved, eff, extra)
    model = load_model(spec, resolved.path, eff, hw, ctx)
    refresh_effective(ctx, eff, extra)
    args.update(packing=eff.packing, packing_strategy="bfd", assistant_only_loss=mask)
    return run_trainer(spec, ctx, SFTTrainer, SFTConfig, args, model, tok, rows, val_rows)


def run_trainer(spec, ctx: RunContext, trainer_cls, config_cls, args: dict[str, Any], model,
                tok, rows: list[dict], val_rows: list[dict]) -> dict[str, Any]:
    """Run a TRL trainer (`trainer_cls` with `config_cls(**args)`) to the end: resume from the
    job's last checkpoint, count the real tokens of each micro-batch, save and report. The
    common tail of the SFT and DPO recipes."""
    from datasets import Dataset

    from .adapters import peft_config
    from .training import finish, make_callback, record_rank, resume_point

    ckpt, tokens_offset = resume_point(ctx)
    callback = make_callback(ctx, tokens_offset)
    trainer = trainer_cls(model=model, args=config_cls(**args),
                          train_dataset=Dataset.from_list(rows),
                          eval_dataset=Dataset.from_list(val_rows) if val_rows else None,
                          processing_class=tok, peft_config=peft_config(spec),
                          callbacks=[callback])
    counter = TokenCounter(trainer.data_collator)
    trainer.data_collator = counter
    callback.counter = counter
    trainer.train(resume_from_checkpoint=ckpt)
    peak, kind = peak_memory()
    if ctx.is_main and peak is not None:
        ctx.files.update_status(peak_memory_gb=round(peak, 3), peak_memory_kind=kind)
        ctx.files.event(f"peak memory {peak:.2f} GB ({kind})")
    result = finish(trainer, tok, ctx, callback)
    record_rank(ctx, trainer, counter, callback)
    return result
