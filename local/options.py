"""`backend_options.local`: every setting the local provider, its launcher and the recipes read.

The core merges the spec's `backend_options.local`, `UNITUNE_LOCAL_<OPTION>` variables and the
provider's constructor options into `LocalOptions` (unknown keys are refused, naming the nearest
valid one). The worker gets `worker_options(options)`: a plain dict without the unset (None)
fields, because the recipes treat "not set" as "decide by hardware" (`"packing" in options`).
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, field_validator

from ..provider import Options
from ..tracking.spec import TrackingSpec


class LocalOptions(Options):
    """Options of the local backend (all optional; defaults suit one CPU or one GPU)."""

    device: Literal["auto", "cpu", "cuda", "gpu", "mps"] = Field(
        "auto", description="Where to train: auto picks cuda, then mps, then cpu.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 on GPUs/CPUs with native bf16, fp16 on older GPUs, "
                            "else fp32.")
    gpus: int = Field(1, ge=1, description="Processes (one per GPU; CPU processes with ddp).")
    strategy: Literal["ddp", "fsdp", "deepspeed"] = Field(
        "ddp", description="With gpus > 1: ddp replicates the model (torchrun); fsdp or "
                           "deepspeed shard it (accelerate launch, GPUs only).")
    launcher: Literal["auto", "torchrun", "accelerate"] = Field(
        "auto", description="ddp launcher: auto/torchrun uses torchrun; accelerate uses "
                            "accelerate launch.")
    attn_implementation: str = Field(
        "auto", description="transformers attn_implementation; auto: flash_attention_3/2 on a "
                            "GPU where flash-attn is installed (bf16/fp16), else sdpa. A kernel "
                            "that does not load falls back to sdpa, and the run says so.")
    lr_scheduler: str = Field("linear", description="transformers lr_scheduler_type.")
    logging_steps: int = Field(1, ge=1, description="Log a metrics row every N steps.")
    save_steps: int = Field(50, ge=1, description="Checkpoint every N steps.")
    keep_checkpoints: int = Field(2, ge=1, description="Checkpoints kept (save_total_limit).")
    eval_steps: Optional[int] = Field(None, ge=1, description="Evaluate every N steps "
                                                              "(default: save_steps).")
    max_length: int = Field(1024, ge=16, description="Tokens per example when "
                                                     "hyperparameters.max_seq_length is unset.")
    per_device_batch_size: Optional[int] = Field(None, ge=1, description="Cap on examples per "
                                                 "device per micro-step (default 8 on CPU, "
                                                 "64 on GPU; the memory plan may split them).")
    packing: Optional[bool] = Field(None, description="BFD packing for SFT (default: on for SFT "
                                    "with weight adapters, off for DPO and prompt learning).")
    activation_checkpointing: Optional[bool] = Field(None, description="Recompute activations "
                                                     "(default: only when memory needs it).")
    micro_tokens: Optional[int] = Field(None, description="Most tokens per packed micro-step "
                                        "(default 1024 on CPU, no limit on GPU; <= 0: no limit).")
    pad_to_multiple_of: int = Field(64, ge=0, description="Pad packed micro-batches to a multiple "
                                                          "of N tokens (0: off).")
    liger: Optional[bool] = Field(None, description="Liger Kernel's fused RMSNorm/RoPE/SwiGLU "
                                  "(default: on for supported model families on a CUDA GPU with "
                                  "liger-kernel installed; false: off).")
    optimizer: Optional[Literal["auto", "adamw_torch_fused", "adamw_torch", "adamw_8bit",
                                "paged_adamw_8bit", "paged_adamw_32bit"]] = Field(
        None, description="Default (auto): fused AdamW; adamw_8bit / paged_* use bitsandbytes "
                          "(paged: CUDA only).")
    torch_compile: Optional[bool] = Field(None, description="torch.compile the model (default "
                                          "off: not measured to pay here).")
    checkpoint_every_n_layers: Optional[int] = Field(
        None, ge=1, description="Checkpoint only every n-th decoder layer (default: the memory "
                                "plan picks; 1 = every layer). Implies checkpointing.")
    activation_offload: Optional[bool] = Field(
        None, description="Hold checkpointed activations in host memory (default: only when the "
                          "memory plan needs it).")
    memory_budget_gb: Optional[float] = Field(
        None, gt=0, description="Memory the plan may use (default: 90% of the GPU's less 1 GB, "
                                "or 80% of RAM).")
    tracking: Optional[TrackingSpec] = Field(
        None, description="Report live to mlflow, tensorboard and/or wandb (e.g. `mlflow`, "
                          "`[mlflow, tensorboard]` or a mapping; see docs/tracking.md). The "
                          "spec's top-level `tracking:` wins over this.")

    @field_validator("device", "precision", "strategy", "launcher", "optimizer", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


def worker_options(options: LocalOptions) -> dict[str, Any]:
    """The options as the worker and the recipes read them (unset fields left out)."""
    return options.model_dump(exclude_none=True)
