"""The DPO recipe: one self-contained run of TRL's DPOTrainer (+ PEFT) on preference pairs.

With an adapter, the reference model is the base with the adapter disabled (no second copy in
memory); with `full`, TRL keeps a frozen copy as the reference.
"""
from __future__ import annotations

from typing import Any

from .training import RunContext


def run(spec, ctx: RunContext) -> dict[str, Any]:
    from trl import DPOConfig, DPOTrainer

    from .sft import announce, prepare, refresh_effective, run_trainer
    from .training import common_args, load_model

    hw, resolved, eff, tok, rows, val_rows, _shape = prepare(spec, ctx, "dpo")
    beta = spec.hyperparameters.beta or 0.1
    extra = {"beta": beta, "adapter": spec.adapter.type,
             "loss_on": "chosen/rejected completions (sigmoid DPO loss)"}
    announce(ctx, hw, resolved, eff, extra)
    model = load_model(spec, resolved.path, eff, hw, ctx)
    refresh_effective(ctx, eff, extra)
    args = common_args(spec, eff, ctx, has_eval=bool(val_rows))
    args.update(beta=beta)
    return run_trainer(spec, ctx, DPOTrainer, DPOConfig, args, model, tok, rows, val_rows)
