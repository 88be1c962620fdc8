"""Hardware detection and the hardware-aware defaults printed as the "effective config" (the
memory plan they use lives in `memory.py`).

Precision by hardware (fp32 on CPUs without native bf16 — bf16 was 22x slower than fp32 on this
kind of CPU; bf16 on GPUs that have it, else fp16), packing (BFD, padding-free) for SFT, the
attention kernel / fused kernels / optimizer by what is installed, and the memory plan:
`predict_memory` is a pure function of the model's shape, the adapter, precision, micro-batch,
sequence length, optimizer and checkpointing; `plan_memory` uses it to pick the fastest
micro-batch and activation checkpointing (none, every n-th layer, every layer, offloaded to host
memory) that fits the memory this machine has. Gradient accumulation reaches the requested
effective batch. Nothing here imports torch at module level; `detect_light` and the plan rows
need neither torch nor transformers.
"""
from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from .memory import (GB, MemoryPlan, ModelShape, memory_budget_gb, plan_memory, read_model_shape,
                     rough_shape)

DEFAULT_EFFECTIVE_BATCH = 8
MAX_PER_DEVICE_BATCH = 8  # CPU: larger micro-steps only cost memory
GPU_MAX_PER_DEVICE_BATCH = 64  # GPU: bigger micro-steps keep it busy; the memory plan splits them


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
            mem = f"{self.gpu_memory_gb:.0f} GB" if self.gpu_memory_gb else "memory unknown"
            return f"{self.gpus}x {self.gpu_name} ({mem}), bf16 {'yes' if self.bf16 else 'no'}"
        ram = f"{self.ram_gb:.0f} GB RAM" if self.ram_gb else "RAM unknown"
        return (f"{self.device}, {self.cpu_count} cores, {ram}, "
                f"native bf16 {'yes' if self.bf16 else 'no'}")


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
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
    except (ValueError, OSError, AttributeError):
        return None


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def detect(device: str | None = None) -> Hardware:
    """What this process can train on. `device` ("cpu", "cuda", "mps") forces a choice."""
    import torch

    cpus = _cpus()
    want = (device or "auto").lower()
    if want in ("auto", "cuda", "gpu") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Hardware("cuda", gpus=torch.cuda.device_count(), gpu_name=props.name,
                        gpu_memory_gb=props.total_memory / GB,
                        bf16=torch.cuda.is_bf16_supported(), fp16=True, cpu_count=cpus,
                        ram_gb=_ram_gb())
    if want in ("auto", "mps") and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return Hardware("mps", gpus=1, bf16=False, fp16=True, cpu_count=cpus, ram_gb=_ram_gb())
    flags = _cpu_flags()
    native_bf16 = bool({"avx512_bf16", "amx_bf16"} & flags)
    return Hardware("cpu", bf16=native_bf16, cpu_count=cpus, ram_gb=_ram_gb())


def _nvidia_smi() -> tuple[str, float, int] | None:
    """(name, memory in GB, count) of the GPUs nvidia-smi lists, or None."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line for line in out.stdout.splitlines() if "," in line]
    if out.returncode != 0 or not lines:
        return None
    name, mem = lines[0].rsplit(",", 1)
    try:
        return name.strip(), float(mem) * 2**20 / GB, len(lines)
    except ValueError:
        return None


def detect_light() -> Hardware:
    """A torch-free guess of the hardware for `plan` (the worker decides again with torch)."""
    cpus = _cpus()
    if shutil.which("nvidia-smi") or os.path.exists("/proc/driver/nvidia/version"):
        smi = _nvidia_smi()
        name, mem, count = smi if smi else ("NVIDIA GPU", None, 1)
        return Hardware("cuda", gpus=count, gpu_name=name, gpu_memory_gb=mem, bf16=True,
                        fp16=True, cpu_count=cpus, ram_gb=_ram_gb())
    native_bf16 = bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())
    return Hardware("cpu", bf16=native_bf16, cpu_count=cpus, ram_gb=_ram_gb())


def has_module(name: str) -> bool:
    """Whether `name` is importable, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# -- kernels and the optimizer -------------------------------------------------------------------

# Model types Liger Kernel 0.8.5 patches (liger_kernel.transformers.monkey_patch); when the package
# is importable, its own table is asked instead.
LIGER_FAMILIES = frozenset(
    "deepseek_v2 deepseek_v3 deepseek_v4 gemma gemma2 gemma3_text gemma3 gemma4_text gemma4 glm4 "
    "granite llama llama4_text llama4 ministral mistral mixtral nemotron olmo2 olmo3 phi3 qwen2 "
    "qwen3 qwen3_moe qwen3_next smollm3 falcon_h1 exaone4 hunyuan_v1_dense gpt_oss".split())
OPTIMIZERS = ("auto", "adamw_torch_fused", "adamw_torch", "adamw_8bit", "paged_adamw_8bit",
              "paged_adamw_32bit")


def liger_families() -> frozenset[str]:
    """Model types Liger can patch: its own table when it imports (it needs Triton, so a GPU
    machine), else the list above."""
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except Exception:  # noqa: BLE001 - absent, or present without triton
        return LIGER_FAMILIES
    return frozenset(MODEL_TYPE_TO_APPLY_LIGER_FN)


def choose_liger(hw: Hardware, model_type: str, options: dict,
                 has: Callable[[str], bool] = has_module) -> tuple[bool, str]:
    """Whether to apply Liger's fused RMSNorm/RoPE/SwiGLU kernels, and why."""
    want = options.get("liger")
    if want is False:
        return False, "off (backend_options.local.liger)"
    asked = " (liger: true asked for it)" if want else ""
    if hw.device != "cuda":
        return False, f"Liger's Triton kernels need a CUDA GPU{asked}"
    if not (has("liger_kernel") and has("triton")):
        return False, f"liger-kernel is not installed{asked}: pip install 'unitune[gpu]'"
    if model_type not in liger_families():
        return False, f"Liger has no kernels for model type {model_type or '?'}{asked}"
    return True, (f"fused RMSNorm, RoPE and SwiGLU for {model_type} (the loss already goes "
                  "through TRL's fused LM head: no full logits tensor)")


def choose_attention(hw: Hardware, precision: str, options: dict,
                     has: Callable[[str], bool] = has_module) -> tuple[str, str]:
    """The transformers attn_implementation, and why (the loader falls back to sdpa when the
    chosen kernel does not load)."""
    want = str(options.get("attn_implementation") or "auto")
    if want != "auto":
        return want, "set in backend_options.local.attn_implementation"
    if hw.device == "cuda" and precision in ("bf16", "fp16"):
        if has("flash_attn_interface"):
            return "flash_attention_3", ("FlashAttention 3 installed: varlen kernel, no FLOP on "
                                         "padding, packed neighbours never attend to each other")
        if has("flash_attn"):
            return "flash_attention_2", ("flash-attn installed: varlen kernel, no FLOP on "
                                         "padding, packed neighbours never attend to each other")
        return "sdpa", ("flash-attn is not installed: SDPA with a block-diagonal mask (packed "
                        "neighbours never attend to each other; masked blocks still cost FLOPs)")
    return "sdpa", ("SDPA with a block-diagonal mask from the position ids: packed neighbours "
                    "never attend to each other")


def choose_optimizer(hw: Hardware, options: dict,
                     has: Callable[[str], bool] = has_module) -> tuple[str, str]:
    want = str(options.get("optimizer") or "auto")
    if want not in OPTIMIZERS:
        from ..errors import SpecError

        raise SpecError(f"backend_options.local.optimizer {want!r} is not one of "
                        + ", ".join(OPTIMIZERS), field="backend_options.local.optimizer",
                        hint="leave it out for fused AdamW")
    if want == "auto":
        return "adamw_torch_fused", "fused AdamW: one kernel per step for all parameters"
    if "8bit" in want or "paged" in want:
        from ..errors import SpecError

        if not has("bitsandbytes"):
            raise SpecError(f"optimizer {want} needs bitsandbytes, which is not installed",
                            field="backend_options.local.optimizer",
                            hint="pip install 'unitune[local]', or leave optimizer unset")
        if "paged" in want and hw.device != "cuda":
            raise SpecError(f"optimizer {want} pages its state through CUDA unified memory and "
                            f"needs a CUDA GPU; this run is on {hw.device}",
                            field="backend_options.local.optimizer",
                            hint="use adamw_8bit on CPU, or leave optimizer unset")
    return want, "set in backend_options.local.optimizer"


# -- the effective configuration -------------------------------------------------------------------

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
    attn_implementation: str = "sdpa"
    liger: bool = False
    optimizer: str = "adamw_torch_fused"
    torch_compile: bool = False
    checkpoint_every_n_layers: int = 1
    activation_offload: bool = False
    memory_budget_gb: float | None = None
    predicted_memory_gb: float | None = None
    memory_parts_gb: dict[str, float] | None = None
    why: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        out = []
        for key in ("device", "precision", "packing", "activation_checkpointing",
                    "per_device_batch_size", "gradient_accumulation_steps", "world_size",
                    "effective_batch_size", "max_length", "learning_rate", "epochs", "max_steps",
                    "seed", "attn_implementation", "liger", "optimizer", "torch_compile",
                    "predicted_memory_gb"):
            value = getattr(self, key)
            if key == "activation_checkpointing" and value:
                value = ("every layer" if self.checkpoint_every_n_layers == 1 else
                         f"every {self.checkpoint_every_n_layers}th layer") + \
                    (", offloaded" if self.activation_offload else "")
            reason = self.why.get(key)
            out.append(f"{key:>28}: {value}" + (f"   ({reason})" if reason else ""))
        return out

    def apply_plan(self, plan: MemoryPlan, *, forced: bool = False) -> None:
        """Take the memory plan's checkpointing and its prediction (the caller applies the
        micro-step split to its batch sizes)."""
        self.activation_checkpointing = plan.checkpointing
        self.checkpoint_every_n_layers = plan.checkpoint_every or 1
        self.activation_offload = plan.offload
        self.memory_budget_gb = round(plan.budget_gb, 2) if plan.budget_gb else None
        self.predicted_memory_gb = round(plan.estimate.gb, 2)
        self.memory_parts_gb = plan.estimate.parts_gb()
        budget = f"{plan.budget_gb:.1f} GB budget" if plan.budget_gb else "no known budget"
        self.why["predicted_memory_gb"] = (f"{plan.estimate.summary()}; {budget}"
                                           + ("" if plan.fits else " — DOES NOT FIT"))
        if not forced:
            self.why["activation_checkpointing"] = f"memory plan: {plan.describe()} ({plan.why})"


DEFAULT_LR = {"lora": 2e-4, "dora": 2e-4, "rslora": 2e-4, "qlora": 2e-4, "full": 2e-5,
              "prefix": 1e-2, "p_tuning": 1e-2, "prompt_tuning": 1e-2, "ia3": 5e-3}
PROMPT_LEARNING = ("prefix", "p_tuning", "prompt_tuning")


def plan_for(spec, eff: EffectiveConfig, shape: ModelShape, hw: Hardware, options: dict, *,
             rows: int, seq_len: int, tokens_per_row: float | None = None,
             masked: bool = True) -> MemoryPlan:
    """The memory plan for this spec's run, honouring the checkpointing options."""
    a = spec.adapter
    ckpt = options.get("activation_checkpointing")
    every = options.get("checkpoint_every_n_layers")
    off = options.get("activation_offload")
    if a.type in PROMPT_LEARNING:
        ckpt = False  # prefix tuning breaks with it
    if ckpt is False:  # an explicit "no" wins over the finer checkpointing options
        every, off = None, None
    if hw.device != "cuda":
        off = None if off is None else False  # offloading needs an accelerator to offload from
    impl = eff.attn_implementation
    attention = "flash" if "flash" in impl else ("eager" if impl == "eager" else "sdpa")
    return plan_memory(shape, rows=rows, seq_len=seq_len, tokens_per_row=tokens_per_row,
                       budget_gb=memory_budget_gb(hw, options), device=hw.device,
                       checkpointing=ckpt, every_n=int(every) if every else None,
                       offload=off, adapter=a.type, r=a.r, targets=a.target_modules,
                       bits=a.bits or 4, precision=eff.precision, optimizer=eff.optimizer,
                       attention=attention,
                       masked=masked, liger=eff.liger)


def checkpointing_set(options: dict) -> bool:
    """Whether the options decide activation checkpointing (the plan then only predicts)."""
    return any(k in options for k in ("activation_checkpointing", "checkpoint_every_n_layers",
                                      "activation_offload"))


def choose(spec, hw: Hardware, *, n_params: int | None = None, hidden: int | None = None,
           layers: int | None = None, world_size: int = 1, options: dict | None = None,
           shape: ModelShape | None = None) -> EffectiveConfig:
    """Pick the effective training configuration for `spec` on `hw` (options override).

    With the model's `shape` (or its size: n_params, hidden, layers) the memory plan decides
    activation checkpointing and may split micro-steps; without it that is left to the worker.
    """
    options = options or {}
    hp = spec.hyperparameters
    adapter = spec.adapter.type
    why: dict[str, str] = {}
    if shape is None and n_params and hidden and layers:
        shape = rough_shape(n_params, hidden, layers)

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
        cap = int(options.get("per_device_batch_size") or
                  (GPU_MAX_PER_DEVICE_BATCH if hw.device == "cuda" and shape is not None
                   else MAX_PER_DEVICE_BATCH))
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
        why["packing"] = ("BFD packing, padding-free: rows of real tokens with per-example "
                          "position ids instead of padding")

    lr = hp.learning_rate or DEFAULT_LR.get(adapter, 2e-4)
    if spec.method == "dpo" and not hp.learning_rate:
        lr = 5e-6 if adapter == "full" else 5e-5
    if not hp.learning_rate:
        why["learning_rate"] = f"default for {spec.method}/{adapter}"
    epochs = hp.epochs if isinstance(hp.epochs, int) else 1
    if hp.epochs == "auto":
        why["epochs"] = "auto: 1"
    seed = hp.seed if hp.seed is not None else 42

    model_type = shape.model_type if shape else ""
    attn, why["attn_implementation"] = choose_attention(hw, precision, options)
    liger, why["liger"] = choose_liger(hw, model_type, options)
    optimizer, why["optimizer"] = choose_optimizer(hw, options)
    compile_ = bool(options.get("torch_compile", False))
    why["torch_compile"] = ("set in backend_options.local.torch_compile" if compile_ else
                            "off: not measured to pay for its compile time on these runs")

    out = EffectiveConfig(device=hw.device, precision=precision, packing=packing,
                          activation_checkpointing=False, per_device_batch_size=per_dev,
                          gradient_accumulation_steps=ga, world_size=world_size,
                          effective_batch_size=eff_real, max_length=max_length,
                          learning_rate=lr, epochs=epochs, max_steps=hp.max_steps, seed=seed,
                          attn_implementation=attn, liger=liger, optimizer=optimizer,
                          torch_compile=compile_, why=why)

    # activation checkpointing (and the micro-step) from the memory plan
    set_ckpt = checkpointing_set(options)
    if options.get("activation_offload") and hw.device != "cuda":
        why["activation_offload"] = (f"not applied: on {hw.device} the activations already "
                                     "live in host memory")
    if adapter in PROMPT_LEARNING and not options.get("activation_checkpointing"):
        why["activation_checkpointing"] = "prefix/prompt tuning breaks with it"
        if shape is not None:
            plan = plan_for(spec, out, shape, hw, {**options, "activation_checkpointing": False},
                            rows=per_dev, seq_len=max_length)
            out.apply_plan(plan, forced=True)
        return out
    if shape is None:
        every, off = options.get("checkpoint_every_n_layers"), options.get("activation_offload")
        ckpt = options.get("activation_checkpointing")
        ckpt = bool(every or off) if ckpt is None else bool(ckpt)
        out.activation_checkpointing = ckpt
        out.checkpoint_every_n_layers = int(every or 1) if ckpt else 1
        out.activation_offload = bool(off) and ckpt and hw.device == "cuda"
        why["activation_checkpointing"] = ("set in backend_options.local" if set_ckpt else
                                           "decided on the worker from model size and memory")
        return out
    rows = per_dev * (2 if spec.method == "dpo" else 1)  # DPO: chosen and rejected together
    plan = plan_for(spec, out, shape, hw, options, rows=rows, seq_len=max_length)
    out.apply_plan(plan, forced=set_ckpt)
    if set_ckpt:
        why["activation_checkpointing"] = "set in backend_options.local"
    if plan.split > 1 and not packing:  # SFT with packing re-plans on the packed rows
        out.per_device_batch_size = max(1, per_dev // plan.split)
        out.gradient_accumulation_steps = ga * plan.split
        why["gradient_accumulation_steps"] = (f"memory plan: {out.per_device_batch_size} per "
                                              f"micro-step x {out.gradient_accumulation_steps}")
    return out


def speed_plan_rows(spec, model: str, options: Any) -> list:
    """Rows for `unitune plan --backend local`: attention kernel, Liger, optimizer, compile and
    the memory plan (predicted peak, checkpointing, micro-step) for the hardware `plan` sees, from
    the model's config.json alone (no torch). With packing the worker plans again on the packed
    rows, which are never longer than this worst case (every example max_length tokens)."""
    from ..backends import PlanRow

    opts = options if isinstance(options, dict) else options.model_dump(exclude_none=True)
    get = opts.get
    hw = detect_light()
    shape = read_model_shape(model)
    eff = choose(spec, hw, shape=shape, world_size=int(get("gpus", 1) or 1), options=opts)
    why = eff.why
    rows = [
        PlanRow("backend_options.local.attn_implementation", get("attn_implementation", "auto"),
                "attn_implementation", eff.attn_implementation, why.get("attn_implementation")),
        PlanRow("backend_options.local.liger", get("liger"), "Liger kernels (RMSNorm, RoPE, "
                "SwiGLU)", eff.liger, why.get("liger")),
        PlanRow("backend_options.local.optimizer", get("optimizer"), "optim", eff.optimizer,
                why.get("optimizer")),
        PlanRow("backend_options.local.torch_compile", get("torch_compile"), "torch_compile",
                eff.torch_compile, why.get("torch_compile")),
    ]
    if shape is None:
        rows.append(PlanRow("(memory plan)", get("memory_budget_gb"), "activation checkpointing, "
                            "micro-step", "decided on the worker", "the model's config.json "
                            "could not be read here"))
        return rows
    if eff.activation_checkpointing:
        ckpt = ("every layer" if eff.checkpoint_every_n_layers == 1 else
                f"every {eff.checkpoint_every_n_layers}th layer") + \
            (", offloaded to host memory" if eff.activation_offload else "")
    else:
        ckpt = "off"
    where = hw.describe()
    rows.append(PlanRow("(memory plan)", get("memory_budget_gb"),
                        "predicted peak memory / activation checkpointing / micro-step",
                        f"{eff.predicted_memory_gb:.2f} GB / {ckpt} / "
                        f"{eff.per_device_batch_size} x {eff.gradient_accumulation_steps}",
                        f"{why.get('predicted_memory_gb')}; on {where}; worst case (every "
                        f"example {eff.max_length} tokens, padded); the worker plans again on "
                        "the packed rows"))
    return rows
