"""llama.cpp's own conversion scripts, found on this machine and run in a child process.

unitune never ships `convert_hf_to_gguf.py` / `convert_lora_to_gguf.py`: they come with every
llama.cpp checkout and inside the `llama-cpp-python` source distribution
(`vendor/llama.cpp/`). They are found, in this order, from

1. an explicit directory or file (`unitune export --llama-cpp DIR`),
2. `UNITUNE_LLAMA_CPP` (a llama.cpp checkout, an unpacked llama-cpp-python sdist, or the sdist
   `.tar.gz` itself, which is unpacked once under `UNITUNE_HOME/cache/llama.cpp/`),
3. `UNITUNE_HOME/llama.cpp` (a checkout or unpacked sdist put there).

The child is `python -m unitune.local.llamacpp SCRIPT [--declare-pre NAME] -- ARGS`: it runs the
script's own `main()` unchanged, with one optional, declared exception. llama.cpp recognises a
BPE tokenizer's pre-tokenizer only by a hash over known models' token ids; a tokenizer whose
`tokenizer.json` pre-tokenizer is exactly GPT-2's byte-level one (unitune's own tiny-chat, any
model trained from a plain `ByteLevel` BPE) is refused as "not recognized" although llama.cpp's
`gpt-2` pre-tokenizer splits it identically. unitune checks that configuration itself
(`declared_pre_tokenizer`) and, only then, lets the converter fall back to `gpt-2` instead of
raising; every other unknown tokenizer is refused with the converter's reason.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissingDependency, UnituneError

CONVERT_HF = "convert_hf_to_gguf.py"
CONVERT_LORA = "convert_lora_to_gguf.py"
ENV = "UNITUNE_LLAMA_CPP"
SDIST_HINT = ("get llama.cpp's converter (no build needed): `pip download --no-deps --no-binary "
              ":all: llama-cpp-python -d DIR`, then `export UNITUNE_LLAMA_CPP=DIR/"
              "llama_cpp_python-<version>.tar.gz` (or point it at a llama.cpp checkout)")
# GPT-2's byte-level pre-tokenizer as tokenizers writes it (trim_offsets does not change ids)
_GPT2_PRE = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}


def _candidates(root: Path) -> list[Path]:
    return [root, root / "vendor" / "llama.cpp"]


def _unpack_sdist(archive: Path) -> Path:
    """Unpack a llama-cpp-python sdist once under UNITUNE_HOME/cache/llama.cpp/ (only the
    scripts, the `conversion` package and `gguf-py` are extracted)."""
    import shutil
    import tarfile
    import tempfile

    from ..paths import unitune_home

    stat = archive.stat()
    dest = unitune_home() / "cache" / "llama.cpp" / f"{archive.name}-{stat.st_size}"
    if (dest / "vendor" / "llama.cpp" / CONVERT_HF).exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        with tarfile.open(archive) as tar:
            wanted = []
            for member in tar.getmembers():
                parts = Path(member.name).parts
                if len(parts) < 4 or parts[1:3] != ("vendor", "llama.cpp"):
                    continue
                rest = parts[3:]
                if (len(rest) == 1 and rest[0] in (CONVERT_HF, CONVERT_LORA)) or \
                        rest[0] in ("conversion", "gguf-py"):
                    if member.isfile() or member.isdir():
                        member.name = str(Path("vendor", "llama.cpp", *rest))
                        wanted.append(member)
            if not wanted:
                raise UnituneError(f"{archive} holds no vendor/llama.cpp/{CONVERT_HF}",
                                   hint=SDIST_HINT)
            tar.extractall(tmp, members=wanted, filter="data")
        try:
            os.rename(tmp, dest)
        except OSError:  # another process unpacked it first
            if not (dest / "vendor" / "llama.cpp" / CONVERT_HF).exists():
                raise
    except (OSError, tarfile.TarError) as exc:
        raise UnituneError(f"cannot unpack {archive}: {exc}", hint=SDIST_HINT) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def find_script(name: str, explicit: str | os.PathLike | None = None) -> Path:
    """The path of llama.cpp's `name` script (see the module docstring for the search order)."""
    from ..paths import unitune_home

    tried: list[str] = []
    roots: list[tuple[str, Path]] = []
    if explicit:
        roots.append(("--llama-cpp", Path(explicit).expanduser()))
    if os.environ.get(ENV):
        roots.append((ENV, Path(os.environ[ENV]).expanduser()))
    roots.append(("UNITUNE_HOME", unitune_home() / "llama.cpp"))
    for origin, root in roots:
        if root.is_file() and root.name == name:
            return root
        if root.is_file() and root.name.endswith((".tar.gz", ".tgz")):
            root = _unpack_sdist(root)
        for cand in _candidates(root):
            if (cand / name).is_file():
                return cand / name
        tried.append(f"{origin}={root}")
    raise MissingDependency(f"llama.cpp's {name} was not found (looked in {', '.join(tried)})",
                            hint=SDIST_HINT)


def declared_pre_tokenizer(model_dir: Path) -> str | None:
    """`gpt-2` when the tokenizer is a byte-level BPE configured exactly like GPT-2's (no
    normalizer, ByteLevel pre-tokenizer with the GPT-2 regex, no prefix space), else None."""
    import json

    try:
        tok = json.loads((Path(model_dir) / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pre = tok.get("pre_tokenizer") or {}
    model = tok.get("model") or {}
    if tok.get("normalizer") is not None or model.get("type") != "BPE" \
            or model.get("byte_fallback"):
        return None
    if any(pre.get(k) != v for k, v in _GPT2_PRE.items()):
        return None
    return "gpt-2"


@dataclass
class Ran:
    """A finished converter run: its command line and everything it printed."""

    argv: list[str]
    output: str


def run_script(script: Path, args: list[str], *, declare_pre: str | None = None,
               timeout_s: float = 3600.0, log_file: Path | None = None) -> Ran:
    """Run a llama.cpp script in a child Python (this interpreter); a failure becomes one
    UnituneError with the converter's own reason and a fix."""
    argv = [sys.executable, "-m", "unitune.local.llamacpp", str(script)]
    if declare_pre:
        argv += ["--declare-pre", declare_pre]
    argv += ["--", *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UnituneError(f"{script.name} did not finish within {timeout_s:.0f} s",
                           hint="convert a smaller model, or run the script by hand") from None
    output = (proc.stdout or "") + (proc.stderr or "")
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text(" ".join(argv) + "\n\n" + output, encoding="utf-8")
    if proc.returncode != 0:
        raise converter_error(script, output, log_file)
    return Ran(argv=argv, output=output)


def converter_error(script: Path, output: str, log_file: Path | None) -> UnituneError:
    """The converter's failure as one clear error (the full output stays in the log file)."""
    where = f" (full output: {log_file})" if log_file else ""
    missing = re.search(r"No module named '([\w.]+)'", output)
    if missing:
        top = missing.group(1).split(".")[0]
        return MissingDependency(f"{script.name} needs the Python package {top!r}{where}",
                                 hint=f"pip install {top}  (or pip install 'unitune[export]')")
    if "BPE pre-tokenizer was not recognized" in output:
        chk = re.search(r"chkhsh:\s*([0-9a-f]{64})", output)
        return UnituneError(
            "llama.cpp cannot convert this tokenizer: its converter accepts only BPE "
            "pre-tokenizers it knows by a hash of their token ids"
            + (f" (this one: {chk.group(1)})" if chk else "") + where,
            hint="if the tokenizer splits text exactly like a known model, pass "
                 "--pre-tokenizer NAME (e.g. gpt-2, llama-bpe, qwen2); otherwise add the model to "
                 "llama.cpp's convert_hf_to_gguf_update.py, or export safetensors "
                 "(`unitune export JOB DIR`) and serve with vLLM")
    unsupported = re.search(r"Model (\S+) is not supported", output)
    if unsupported:
        return UnituneError(f"llama.cpp's converter does not support the architecture "
                            f"{unsupported.group(1)}{where}",
                            hint="export safetensors instead (`unitune export JOB DIR`) and "
                                 "serve them with vLLM or transformers")
    last = [ln for ln in output.strip().splitlines() if ln.strip()][-1:] or ["(no output)"]
    return UnituneError(f"{script.name} failed: {last[0][:400]}{where}",
                        hint="see the log; a newer llama.cpp checkout may support this model")


# -- the child process --------------------------------------------------------------------------
def _declare(namespace: dict, name: str) -> int:
    """Let `get_vocab_base_pre` fall back to `name` instead of raising NotImplementedError, on
    every class that defines it (the script's own or its `conversion` package's)."""
    seen: set[int] = set()
    classes = [v for v in namespace.values() if isinstance(v, type)]
    for mod_name, mod in list(sys.modules.items()):
        if mod_name == "conversion" or mod_name.startswith("conversion."):
            classes += [v for v in vars(mod).values() if isinstance(v, type)]
    patched = 0
    for cls in classes:
        orig = cls.__dict__.get("get_vocab_base_pre")
        if orig is None or id(cls) in seen:
            continue
        seen.add(id(cls))

        def fallback(self, tokenizer, _orig=orig):
            try:
                return _orig(self, tokenizer)
            except NotImplementedError:
                print(f"unitune: pre-tokenizer not in llama.cpp's list; declared {name!r} "
                      "(tokenizer.json has GPT-2's exact byte-level pre-tokenizer)", flush=True)
                return name

        cls.get_vocab_base_pre = fallback
        patched += 1
    return patched


def main(argv: list[str] | None = None) -> int:
    import runpy

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv or not argv:
        print("usage: python -m unitune.local.llamacpp SCRIPT [--declare-pre NAME] -- ARGS",
              file=sys.stderr)
        return 2
    split = argv.index("--")
    head, args = argv[:split], argv[split + 1:]
    script = Path(head[0]).resolve()
    declare = head[head.index("--declare-pre") + 1] if "--declare-pre" in head else None
    sys.path.insert(0, str(script.parent))
    sys.argv = [str(script), *args]
    if not declare:
        runpy.run_path(str(script), run_name="__main__")
        return 0
    namespace = runpy.run_path(str(script), run_name="unitune_llamacpp_script")
    if not _declare(namespace, declare):
        print("unitune: this converter has no get_vocab_base_pre; --declare-pre ignored",
              flush=True)
    if callable(namespace.get("main")):
        namespace["main"]()
    else:  # a script without main(): run it as __main__ (the conversion package stays patched)
        runpy.run_path(str(script), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
