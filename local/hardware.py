"""Hardware detection and the hardware-aware defaults printed as the "effective config".

Precision by hardware (fp32 on CPUs without native bf16 — bf16 was 22x slower than fp32 on this
kind of CPU; bf16 on GPUs that have it, else fp16), packing (BFD) for SFT where it helps,
activation checkpointing only when the estimated memory need exceeds what is there, and gradient
accumulation to reach the requested effective batch.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_EFFECTIVE_BATCH = 8
MAX_PER_DEVICE_BATCH = 8


@dataclass
class Hardware:
    device: str  # "cuda", "mps" or "cpu"
    gpus: int = 0
    gpu_name: str | None = None
    gpu_memory_gb: float | None = None
    bf16: bool = False  # native bf16 arithmetic
    fp16: bool = False
    cpu_count: int = 1
    ram_gb: float | None = None

    def describe(self) -> str:
        if self.device == "cuda":
            return (f"{self.gpus}x {self.gpu_name} ({self.gpu_memory_gb:.0f} GB), "
                    f"bf16 {'yes' if self.bf16 else 'no'}")
        return (f"{self.device}, {self.cpu_count} cores, "
                f"{self.ram_gb:.0f} GB RAM, native bf16 {'yes' if self.bf16 else 'no'}")


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _ram_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        return None


def detect(device: str | None = None) -> Hardware:
    """What this process can train on. `device` ("cpu", "cuda", "mps") forces a choice."""
    import torch

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    want = (device or "auto").lower()
    if want in ("auto", "cuda", "gpu") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Hardware("cuda", gpus=torch.cuda.device_count(), gpu_name=props.name,
                        gpu_memory_gb=props.total_memory / 1e9,
                        bf16=torch.cuda.is_bf16_supported(), fp16=True, cpu_count=cpus,
                        ram_gb=_ram_gb())
    if want in ("auto", "mps") and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return Hardware("mps", gpus=1, bf16=False, fp16=True, cpu_count=cpus, ram_gb=_ram_gb())
    flags = _cpu_flags()
    native_bf16 = bool({"avx512_bf16", "amx_bf16"} & flags)
    return Hardware("cpu", bf16=native_bf16, cpu_count=cpus, ram_gb=_ram_gb())


def detect_light() -> Hardware:
    """A torch-free guess of the hardware for `plan` (the worker decides again with torch)."""
    import shutil

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if shutil.which("nvidia-smi") or os.path.exists("/proc/driver/nvidia/version"):
        return Hardware("cuda", gpus=1, gpu_name="NVIDIA GPU", bf16=True, fp16=True,
                        cpu_count=cpus, ram_gb=_ram_gb())
    native_bf16 = bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())
    return Hardware("cpu", bf16=native_bf16, cpu_count=cpus, ram_gb=_ram_gb())


@dataclass
class EffectiveConfig:
    """The values the local backend actually trains with, and why each was chosen."""

    device: str
    precision: str  # fp32 | bf16 | fp16
    packing: bool
    activation_checkpointing: bool
    per_device_batch_size: int
    gradient_accumulation_steps: int
    world_size: int
    effective_batch_size: int
    max_length: int
    learning_rate: float
    epochs: int
    max_steps: int | None
    seed: int
    why: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        out = []
        for key in ("device", "precision", "packing", "activation_checkpointing",
                    "per_device_batch_size", "gradient_accumulation_steps", "world_size",
                    "effective_batch_size", "max_length", "learning_rate", "epochs", "max_steps",
                    "seed"):
            value = getattr(self, key)
            reason = self.why.get(key)
            out.append(f"{key:>28}: {value}" + (f"   ({reason})" if reason else ""))
        return out


DEFAULT_LR = {"lora": 2e-4, "dora": 2e-4, "rslora": 2e-4, "qlora": 2e-4, "full": 2e-5,
              "prefix": 1e-2, "p_tuning": 1e-2, "prompt_tuning": 1e-2, "ia3": 5e-3}
PROMPT_LEARNING = ("prefix", "p_tuning", "prompt_tuning")


def estimate_memory_gb(n_params: int, *, hidden: int, layers: int, batch: int, seq: int,
                       precision: str, trainable_fraction: float) -> float:
    """Rough training memory: weights + grads/Adam states of trainable params + activations.

    Activations use the ~34·s·b·h bytes per layer estimate (Korthikanti et al., 16-bit) scaled
    to the precision; it is an estimate used only to decide on checkpointing.
    """
    bpp = 4 if precision == "fp32" else 2
    weights = n_params * bpp
    trainable = n_params * trainable_fraction
    optim = trainable * (4 + 4 + 4 + bpp)  # fp32 master/Adam m, v + grad
    acts = 34 * seq * batch * hidden * layers * (bpp / 2)
    return (weights + optim + acts) / 1e9


def choose(spec, hw: Hardware, *, n_params: int | None = None, hidden: int | None = None,
           layers: int | None = None, world_size: int = 1, options: dict | None = None
           ) -> EffectiveConfig:
    """Pick the effective training configuration for `spec` on `hw` (options override)."""
    options = options or {}
    hp = spec.hyperparameters
    adapter = spec.adapter.type
    why: dict[str, str] = {}

    # precision
    forced = str(options.get("precision", "auto")).lower()
    if forced not in ("auto", "fp32", "bf16", "fp16"):
        from ..errors import SpecError

        raise SpecError(f"backend_options.local.precision {forced!r} is not one of auto, fp32, "
                        "bf16, fp16", field="backend_options.local.precision",
                        hint="leave it out to choose by hardware")
    if forced != "auto":
        precision, why["precision"] = forced, "set in backend_options.local.precision"
    elif hw.device == "cuda":
        precision = "bf16" if hw.bf16 else "fp16"
        why["precision"] = "GPU with native bf16" if hw.bf16 else "GPU without bf16: fp16 mixed precision"
    elif hw.device == "cpu" and hw.bf16:
        precision, why["precision"] = "bf16", "CPU with native bf16 (AMX/AVX512-BF16)"
    else:
        precision = "fp32"
        why["precision"] = ("CPU without native bf16 (bf16 is emulated and ~22x slower here)"
                            if hw.device == "cpu" else f"{hw.device}: fp32 is the safe choice")

    # batch and accumulation
    eff = hp.batch_size if isinstance(hp.batch_size, int) else DEFAULT_EFFECTIVE_BATCH
    if hp.batch_size == "auto":
        why["effective_batch_size"] = f"auto: {DEFAULT_EFFECTIVE_BATCH}"
    if hp.gradient_accumulation_steps:
        ga = hp.gradient_accumulation_steps
        per_dev = max(1, eff // (ga * world_size))
        why["gradient_accumulation_steps"] = "set in the spec"
    else:
        cap = int(options.get("per_device_batch_size") or MAX_PER_DEVICE_BATCH)
        per_dev = max(1, min(cap, math.ceil(eff / world_size)))
        ga = max(1, math.ceil(eff / (per_dev * world_size)))
        if ga > 1:
            why["gradient_accumulation_steps"] = (f"to reach the effective batch {eff} with "
                                                  f"{per_dev} per device")
    eff_real = per_dev * ga * world_size
    if eff_real != eff:
        why["effective_batch_size"] = f"requested {eff}; nearest reachable is {eff_real}"

    max_length = hp.max_seq_length or int(options.get("max_length", 1024))
    if not hp.max_seq_length:
        why["max_length"] = "default (hyperparameters.max_seq_length unset)"

    # packing
    if "packing" in options:
        packing = bool(options["packing"])
        why["packing"] = "set in backend_options.local.packing"
    elif spec.method != "sft":
        packing, why["packing"] = False, "DPO compares chosen/rejected pairs; no packing"
    elif adapter in PROMPT_LEARNING:
        packing, why["packing"] = False, "virtual tokens are prepended per sequence"
    else:
        packing = True
        why["packing"] = "BFD packing: rows of real tokens instead of padding"

    # activation checkpointing
    if "activation_checkpointing" in options:
        ckpt = bool(options["activation_checkpointing"])
        why["activation_checkpointing"] = "set in backend_options.local"
    elif adapter in PROMPT_LEARNING:
        ckpt, why["activation_checkpointing"] = False, "prefix/prompt tuning breaks with it"
    else:
        available = (hw.gpu_memory_gb if hw.device == "cuda" else hw.ram_gb) or 0.0
        need = None
        if n_params and hidden and layers:
            frac = 1.0 if adapter == "full" else 0.02
            need = estimate_memory_gb(n_params, hidden=hidden, layers=layers, batch=per_dev,
                                      seq=max_length, precision=precision, trainable_fraction=frac)
        if need is not None and available and need > 0.8 * available:
            ckpt = True
            why["activation_checkpointing"] = f"estimated {need:.1f} GB > 80% of {available:.0f} GB"
        else:
            ckpt = False
            why["activation_checkpointing"] = ("memory suffices" + (f" (estimated {need:.2f} GB of "
                                               f"{available:.0f} GB)" if need is not None else "")
                                               + "; recomputation would cost ~1/3 of the speed")

    lr = hp.learning_rate or DEFAULT_LR.get(adapter, 2e-4)
    if spec.method == "dpo" and not hp.learning_rate:
        lr = 5e-6 if adapter == "full" else 5e-5
    if not hp.learning_rate:
        why["learning_rate"] = f"default for {spec.method}/{adapter}"
    epochs = hp.epochs if isinstance(hp.epochs, int) else 1
    if hp.epochs == "auto":
        why["epochs"] = "auto: 1"
    seed = hp.seed if hp.seed is not None else 42
    return EffectiveConfig(device=hw.device, precision=precision, packing=packing,
                           activation_checkpointing=ckpt, per_device_batch_size=per_dev,
                           gradient_accumulation_steps=ga, world_size=world_size,
                           effective_batch_size=eff_real, max_length=max_length,
                           learning_rate=lr, epochs=epochs, max_steps=hp.max_steps, seed=seed,
                           why=why)
