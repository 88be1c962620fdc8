"""Hardware detection, the memory plan, and the hardware-aware defaults printed as the
"effective config".

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
import json
import math
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

DEFAULT_EFFECTIVE_BATCH = 8
MAX_PER_DEVICE_BATCH = 8  # CPU: larger micro-steps only cost memory
GPU_MAX_PER_DEVICE_BATCH = 64  # GPU: bigger micro-steps keep it busy; the memory plan splits them
GB = 1e9


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


# -- the model's shape -----------------------------------------------------------------------------

LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelShape:
    """What the memory plan needs to know about a decoder-only transformer."""

    hidden: int
    layers: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    head_dim: int
    tied: bool = False
    attention_bias: bool = False
    model_type: str = ""

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear layer of one decoder layer."""
        h, q, kv, i = self.hidden, self.q_dim, self.kv_dim, self.intermediate
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def layer_linear_params(self) -> int:
        return sum(a * b for a, b in self.linear_shapes().values())

    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)

    @property
    def n_params(self) -> int:
        bias = (self.q_dim + 2 * self.kv_dim) if self.attention_bias else 0
        per_layer = self.layer_linear_params() + 2 * self.hidden + bias
        return self.embedding_params() + self.layers * per_layer + self.hidden

    def lora_params(self, r: int, targets: Any = None) -> int:
        """LoRA parameters (A and B) over every layer for `target_modules` (None: all-linear)."""
        shapes = self.linear_shapes()
        names = [n for n in ([targets] if isinstance(targets, str) else (targets or []))
                 if n in shapes] if targets not in (None, "all-linear") else list(shapes)
        names = names or list(shapes)  # unknown names: count as all-linear (an upper bound)
        return self.layers * sum(r * sum(shapes[n]) for n in names)


def shape_from_config(config: Any) -> ModelShape | None:
    """A ModelShape from a transformers config object or a config.json dict (None if the config
    lacks the fields of a decoder-only transformer)."""
    get = (lambda k, d=None: config.get(k, d)) if isinstance(config, dict) else \
        (lambda k, d=None: getattr(config, k, d))
    text = get("text_config")
    if text is not None and not get("hidden_size"):
        return shape_from_config(text)
    h, layers = get("hidden_size"), get("num_hidden_layers")
    heads, vocab = get("num_attention_heads"), get("vocab_size")
    if not (h and layers and heads and vocab):
        return None
    return ModelShape(hidden=int(h), layers=int(layers),
                      intermediate=int(get("intermediate_size") or 4 * h), vocab=int(vocab),
                      heads=int(heads), kv_heads=int(get("num_key_value_heads") or heads),
                      head_dim=int(get("head_dim") or h // heads),
                      tied=bool(get("tie_word_embeddings", False)),
                      attention_bias=bool(get("attention_bias", False)
                                          or get("model_type") == "qwen2"),
                      model_type=str(get("model_type") or ""))


def rough_shape(n_params: int, hidden: int, layers: int) -> ModelShape:
    """A Llama-like shape with the given size (when only the parameter count is known)."""
    inter = int(8 * hidden / 3)
    per_layer = 4 * hidden * hidden + 3 * hidden * inter
    vocab = max(1, (n_params - layers * per_layer) // max(hidden, 1))
    heads = max(1, hidden // 128)
    return ModelShape(hidden=hidden, layers=layers, intermediate=inter, vocab=vocab, heads=heads,
                      kv_heads=heads, head_dim=hidden // heads, tied=True)


def read_model_shape(model: str) -> ModelShape | None:
    """The shape of a model directory, `unitune/tiny-chat` or a hub id in the local cache, from
    its config.json alone (no transformers import); None when it cannot be read."""
    from .tiny import TINY_ID, tiny_config_kwargs

    if model == TINY_ID:
        return shape_from_config(dict(tiny_config_kwargs(512), model_type="llama"))
    candidates = [Path(model).expanduser() / "config.json"]
    if not model.startswith(("/", ".", "~")) and model.count("/") <= 1:
        from .preflight import hub_cache

        snaps = hub_cache() / ("models--" + model.replace("/", "--")) / "snapshots"
        if snaps.is_dir():
            candidates += sorted(snaps.glob("*/config.json"))
    for path in candidates:
        try:
            return shape_from_config(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return None


# -- the memory prediction -------------------------------------------------------------------------

# Bytes autograd keeps for backward, per token and decoder layer (Llama/Qwen2-style layers, TRL's
# fused LM head, SDPA without a mask), as coefficients of (hidden, intermediate, kv_dim, lora_r,
# heads, 1), and the bytes per parameter of the autocast copies each layer keeps (of its LoRA
# weights for adapters, of all its weights for full fine-tuning). Measured on CPU with
# torch.autograd.graph.saved_tensors_hooks (torch 2.13, transformers 5.25, peft 0.21, TRL 1.16;
# 9 shapes x 2 sequence lengths, exact to the byte); tests/local/test_speed_memory.py measures
# again on shapes the fit never saw. Keys: (adapter or full, element bytes of the compute dtype).
ACTIVATION_BYTES: dict[tuple[str, int], tuple[tuple[int, ...], int]] = {
    ("adapter", 2): ((48, 12, 4, 14, 4, 8), 2),
    ("adapter", 4): ((64, 20, 8, 28, 4, 8), 0),
    ("full", 2): ((30, 8, 4, 0, 4, 8), 2),
    ("full", 4): ((32, 16, 8, 0, 4, 8), 0),
}
# Bytes per token outside the decoder layers (embedding output, final norm, the LM head's input;
# the first layer keeps less because its input needs no gradient): (per hidden unit, constant),
# without / with activation checkpointing. Measured as above.
OUTSIDE_BYTES = {("adapter", 2): ((-10, 64), (6, 17)), ("adapter", 4): ((-7, 68), (12, 25)),
                 ("full", 2): ((13, 80), (12, 25)), ("full", 4): ((13, 80), (12, 25))}
# TRL's fused LM head projects 4096 tokens x 32768 vocabulary entries per tile.
LM_HEAD_TILE = (4096, 32768)
CPU_RUNTIME_BYTES = int(1.0 * GB)  # python + torch + transformers + TRL + datasets, resident
PAGED_OR_8BIT = {"adamw_8bit": 2, "paged_adamw_8bit": 2, "paged_adamw_32bit": 8}


@dataclass
class MemoryEstimate:
    """Predicted peak training memory, in bytes, by part."""

    weights: int
    trainable: int  # trainable parameters + their gradients + optimizer state
    activations: int  # kept for backward at the peak
    transient: int  # the largest short-lived buffers (LM-head tiles, one layer's recompute)
    runtime: int  # resident libraries (CPU only: RSS counts them; GPU peak memory does not)
    tokens: int
    trainable_params: int

    @property
    def total(self) -> int:
        return self.weights + self.trainable + self.activations + self.transient + self.runtime

    @property
    def gb(self) -> float:
        return self.total / GB

    def parts_gb(self) -> dict[str, float]:
        return {k: round(getattr(self, k) / GB, 3) for k in
                ("weights", "trainable", "activations", "transient", "runtime")}

    def summary(self) -> str:
        p = self.parts_gb()
        text = (f"{self.gb:.2f} GB = weights {p['weights']:.2f} + trainable/grads/optimizer "
                f"{p['trainable']:.2f} + activations {p['activations']:.2f} + transient "
                f"{p['transient']:.2f}")
        return text + (f" + runtime {p['runtime']:.2f}" if self.runtime else "")


def _element_bytes(precision: str) -> int:
    return 4 if precision == "fp32" else 2


def trainable_params(shape: ModelShape, adapter: str, r: int = 16, targets: Any = None,
                     virtual_tokens: int = 20) -> int:
    if adapter == "full":
        return shape.n_params
    if adapter in ("lora", "rslora", "qlora", "dora"):
        n = shape.lora_params(r, targets)
        if adapter == "dora":  # a magnitude vector per adapted output feature
            n += shape.layers * sum(o for _, o in shape.linear_shapes().values())
        return n
    if adapter == "ia3":
        return shape.layers * (2 * shape.kv_dim + shape.intermediate)
    if adapter == "prefix":
        return virtual_tokens * shape.layers * 2 * shape.kv_dim
    return virtual_tokens * shape.hidden  # prompt_tuning, p_tuning (+ a small encoder)


def predict_memory(shape: ModelShape, *, adapter: str = "lora", r: int = 16,
                   targets: Any = None, bits: int = 4, precision: str = "bf16", rows: int = 1,
                   seq_len: int = 1024, tokens: int | None = None,
                   optimizer: str = "adamw_torch_fused", checkpoint_every: int = 0,
                   offload: bool = False, attention: str = "sdpa", masked: bool = True,
                   liger: bool = False, device: str = "cuda") -> MemoryEstimate:
    """Peak training memory for one micro-step of `rows` rows of `seq_len` tokens (`tokens` real
    ones, default rows x seq_len). A pure function: same inputs, same bytes.

    `checkpoint_every`: 0 keeps every layer's activations, n checkpoints every n-th layer
    (transformers' `every_n_layers`; 1 = all), `offload` holds the checkpointed inputs in host
    memory. `masked`: SDPA/eager get an explicit mask (padding, or several packed sequences per
    row); flash attention never needs one. `liger`: Liger's RMSNorm/SwiGLU kernels (estimated
    from what they keep for backward; not measured here).
    """
    e = _element_bytes(precision)
    kind = "full" if adapter == "full" else "adapter"
    key = (kind, 4 if kind == "full" and precision == "fp32" else e)
    if kind == "full" and precision != "fp32":
        key = ("full", 2)
    coef, cast_bytes = ACTIVATION_BYTES[key]
    n_tokens = int(tokens if tokens is not None else rows * seq_len)
    h, i, kv, L = shape.hidden, shape.intermediate, shape.kv_dim, shape.layers
    lora_r = r if adapter in ("lora", "rslora", "qlora", "dora") else 0
    n_train = trainable_params(shape, adapter, r, targets)

    # weights
    embed_and_norms = shape.n_params - L * shape.layer_linear_params()
    if adapter == "full":
        weights = shape.n_params * 4  # fp32 master weights (autocast computes in bf16/fp16)
    elif adapter == "qlora":
        per_linear = 1.0 + 0.03 if bits == 8 else 0.5 + 0.016  # + quantization constants
        weights = int(L * shape.layer_linear_params() * per_linear) + embed_and_norms * e
    else:
        weights = shape.n_params * e

    # trainable parameters, gradients, optimizer state
    param_b = 2 if adapter == "qlora" else 4  # TRL casts QLoRA adapters to bf16; else fp32
    optim_b = PAGED_OR_8BIT.get(optimizer, 2 * param_b)
    trainable = n_train * (param_b + param_b + optim_b)

    # activations kept for backward
    per_token_layer = (coef[0] * h + coef[1] * i + coef[2] * kv + coef[3] * lora_r
                       + coef[4] * shape.heads + coef[5])
    if liger and device == "cuda":  # RMSNorm keeps its input, SwiGLU recomputes silu(gate)
        per_token_layer -= 2 * (4 - e) * h + e * i
    per_layer_cast = cast_bytes * (n_train // max(L, 1) if kind == "adapter"
                                   else shape.layer_linear_params())
    mask = 0
    if masked and attention != "flash":
        mask_e = 4 if kind == "full" else e
        mask = rows * seq_len * seq_len * mask_e
        if attention == "eager":  # attention probabilities, kept per head
            mask += rows * shape.heads * seq_len * seq_len * 2 * e
    full_layer = n_tokens * per_token_layer + per_layer_cast + mask
    residual_b = 4 if kind == "full" else e
    if checkpoint_every:
        n_ckpt = math.ceil(L / checkpoint_every)
        kept_ckpt = 0 if offload else n_ckpt * n_tokens * residual_b * h
        outside = OUTSIDE_BYTES[key][1]
    else:
        n_ckpt, kept_ckpt = 0, 0
        outside = OUTSIDE_BYTES[key][0]
    # `outside` may be negative: the first layer keeps less than the others (see OUTSIDE_BYTES)
    activations = max(0, kept_ckpt + (L - n_ckpt) * full_layer
                      + n_tokens * (outside[0] * h + outside[1]))

    # transients: the fused LM head's tiles and hidden-state gradient; one layer's backward
    # workspace, plus the recomputed layer under checkpointing
    tile = min(n_tokens, LM_HEAD_TILE[0]) * min(shape.vocab, LM_HEAD_TILE[1])
    lm_head = tile * (e + (4 if device == "cuda" else 12)) + 4 * n_tokens * h
    if adapter == "full":
        lm_head += shape.vocab * h * 4  # the head's fp32 gradient
    layer_ws = e * n_tokens * (2 * h + 3 * i) + (full_layer if checkpoint_every else 0)
    transient = max(lm_head, layer_ws)
    runtime = CPU_RUNTIME_BYTES if device == "cpu" else 0
    return MemoryEstimate(weights=int(weights), trainable=int(trainable),
                          activations=int(activations), transient=int(transient),
                          runtime=runtime, tokens=n_tokens, trainable_params=n_train)


# -- the memory plan -------------------------------------------------------------------------------

GPU_MIN_MICRO_TOKENS = 4096  # below this a micro-step leaves a GPU idle: checkpoint instead


@dataclass
class MemoryPlan:
    """The micro-step the plan picked: rows per micro-step, how many micro-steps make one of the
    requested ones, activation checkpointing, and the prediction for it."""

    rows: int
    split: int  # micro-steps per requested micro-step (multiplies gradient accumulation)
    checkpoint_every: int  # 0 off, 1 every layer, n every n-th layer
    offload: bool
    estimate: MemoryEstimate
    budget_gb: float | None
    fits: bool
    why: str

    @property
    def checkpointing(self) -> bool:
        return self.checkpoint_every > 0

    def describe(self) -> str:
        if not self.checkpoint_every:
            ck = "no activation checkpointing"
        elif self.checkpoint_every == 1:
            ck = "checkpointing every layer"
        else:
            ck = f"checkpointing every {self.checkpoint_every}th layer"
        if self.offload:
            ck += ", checkpoints offloaded to host memory"
        return f"{self.rows} row(s) per micro-step, {ck}"


def memory_budget_gb(hw: Hardware, options: dict | None = None) -> float | None:
    """Memory a run may plan to use: `memory_budget_gb` if set, else 90% of the GPU's (less ~1 GB
    for the CUDA context and libraries' workspaces, which peak-allocated memory does not count)
    or 80% of RAM."""
    options = options or {}
    if options.get("memory_budget_gb"):
        return float(options["memory_budget_gb"])
    if hw.device == "cuda":
        return max(0.5, 0.9 * hw.gpu_memory_gb - 1.0) if hw.gpu_memory_gb else None
    return 0.8 * hw.ram_gb if hw.ram_gb else None


def _divisors_down(n: int) -> list[int]:
    return [d for d in range(n, 0, -1) if n % d == 0]


def plan_memory(shape: ModelShape, *, rows: int, seq_len: int, budget_gb: float | None,
                device: str, tokens_per_row: float | None = None,
                checkpointing: bool | None = None, every_n: int | None = None,
                offload: bool | None = None, min_tokens: int | None = None,
                **predict: Any) -> MemoryPlan:
    """The fastest micro-step that fits `budget_gb`, trying in order: everything kept; the
    micro-step split in two, four, ... (while each still holds `min_tokens`, GPUs only: smaller
    micro-steps leave the GPU idle); checkpointing every n-th layer for n from the number of
    layers down to 2; every layer; every layer with smaller micro-steps; every layer offloaded.
    `checkpointing`/`every_n`/`offload` given (not None) restrict the candidates to them. When
    nothing fits, the smallest candidate is returned with `fits=False`.
    """
    L = shape.layers
    tpr = tokens_per_row if tokens_per_row is not None else float(seq_len)
    if min_tokens is None:
        min_tokens = GPU_MIN_MICRO_TOKENS if device == "cuda" else rows * seq_len

    def est(r: int, n: int, off: bool) -> MemoryEstimate:
        return predict_memory(shape, rows=r, seq_len=seq_len, tokens=int(round(r * tpr)),
                              checkpoint_every=n, offload=off, device=device, **predict)

    candidates: list[tuple[int, int, bool, str]] = [(rows, 0, False, "everything kept")]
    for r in _divisors_down(rows)[1:]:
        if r * seq_len >= min_tokens:
            candidates.append((r, 0, False, "smaller micro-steps, more accumulation"))
    for n in range(L, 1, -1):
        candidates.append((rows, n, False, "recompute part of the layers"))
    candidates.append((rows, 1, False, "recompute every layer"))
    for r in _divisors_down(rows)[1:]:
        candidates.append((r, 1, False, "recompute every layer, smaller micro-steps"))
    if device == "cuda":  # elsewhere activations already live in host memory
        for r in _divisors_down(rows):
            candidates.append((r, 1, True, "recompute every layer, checkpoints in host memory"))

    def allowed(c: tuple[int, int, bool, str]) -> bool:
        _, n, off, _ = c
        if checkpointing is False and n:
            return False
        if (checkpointing or every_n or offload) and not n:
            return False
        if every_n and n != every_n:
            return False
        if offload is not None and n and off != offload:
            return False
        return True

    chosen = [c for c in candidates if allowed(c)]
    if every_n and not chosen:  # e.g. every_n larger than the layer count
        chosen = [(rows, every_n, bool(offload), "as set")]
    budget = budget_gb * GB if budget_gb else None
    smallest = None
    for r, n, off, why in chosen:
        e = est(r, n, off)
        if budget is None or e.total <= budget:
            return MemoryPlan(r, max(1, rows // r), n, off, e, budget_gb, True, why)
        if smallest is None or e.total < smallest[0].total:
            smallest = (e, r, n, off)
    e, r, n, off = smallest
    return MemoryPlan(r, max(1, rows // r), n, off, e, budget_gb, False,
                      "nothing fits the budget; the smallest plan")


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
