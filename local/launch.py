"""How the worker is started: one process, `torchrun` (DDP) or `accelerate launch` with a
generated config (FSDP, DeepSpeed) — never a home-made launcher.

`backend_options.local: {gpus: N, strategy: ddp | fsdp | deepspeed}`. On CPU-only machines `ddp`
with N processes runs through torchrun with the gloo backend (`accelerate launch --cpu
--num_processes 2` silently runs one process, so it is not used for that).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..errors import SpecError

STRATEGIES = ("ddp", "fsdp", "deepspeed")


def parse(options: dict[str, Any]) -> tuple[int, str]:
    try:
        raw = options.get("gpus")
        gpus = 1 if raw is None or raw == "" else int(raw)
    except (TypeError, ValueError):
        raise SpecError(f"backend_options.local.gpus must be a whole number, got {options.get('gpus')!r}",
                        field="backend_options.local.gpus", hint="e.g. gpus: 2") from None
    if gpus < 1:
        raise SpecError("backend_options.local.gpus must be at least 1",
                        field="backend_options.local.gpus", hint="e.g. gpus: 2")
    strategy = str(options.get("strategy", "ddp")).lower()
    if strategy not in STRATEGIES:
        raise SpecError(f"backend_options.local.strategy {strategy!r} is not one of "
                        + ", ".join(STRATEGIES), field="backend_options.local.strategy",
                        hint="ddp replicates the model; fsdp or deepspeed shard it")
    return gpus, strategy


def accelerate_config(gpus: int, strategy: str, precision: str = "bf16") -> dict[str, Any]:
    """The `accelerate launch --config_file` contents for a strategy (keys as in TRL's configs)."""
    mixed = {"bf16": "bf16", "fp16": "fp16"}.get(precision, "no")
    base: dict[str, Any] = {"compute_environment": "LOCAL_MACHINE", "machine_rank": 0,
                            "num_machines": 1, "num_processes": gpus, "main_training_function": "main",
                            "mixed_precision": mixed, "rdzv_backend": "static", "same_network": True,
                            "use_cpu": False, "debug": False}
    if strategy == "ddp":
        base["distributed_type"] = "MULTI_GPU"
    elif strategy == "fsdp":
        base["distributed_type"] = "FSDP"
        base["fsdp_config"] = {"fsdp_version": 2, "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                               "fsdp_state_dict_type": "SHARDED_STATE_DICT",
                               "fsdp_cpu_ram_efficient_loading": True, "fsdp_offload_params": False,
                               "fsdp_reshard_after_forward": True,
                               "fsdp_activation_checkpointing": False}
    else:
        base["distributed_type"] = "DEEPSPEED"
        base["deepspeed_config"] = {"zero_stage": 3, "offload_optimizer_device": "none",
                                    "offload_param_device": "none", "zero3_init_flag": True,
                                    "zero3_save_16bit_model": True, "deepspeed_multinode_launcher": "standard"}
    return base


def command(job_dir: Path, options: dict[str, Any], *, resume: bool = False,
            cuda: bool | None = None) -> list[str]:
    """argv that starts the worker for this job (written into job.json for the record)."""
    gpus, strategy = parse(options)
    tail = ["-m", "unitune.local.worker", str(job_dir)] + (["--resume"] if resume else [])
    if gpus == 1:
        return [sys.executable] + tail
    launcher = str(options.get("launcher", "auto"))
    if strategy == "ddp" and launcher in ("auto", "torchrun"):
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                "--nproc_per_node", str(gpus)] + tail
    if cuda is False:
        raise SpecError(f"strategy {strategy} shards the model across GPUs; this machine has none",
                        field="backend_options.local.strategy",
                        hint="use strategy: ddp (runs on CPU processes through torchrun) or a GPU machine")
    import yaml

    cfg_path = Path(job_dir) / "accelerate.yaml"
    cfg_path.write_text(yaml.safe_dump(accelerate_config(gpus, strategy,
                                                         str(options.get("precision", "bf16")))))
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(cfg_path)] + tail
