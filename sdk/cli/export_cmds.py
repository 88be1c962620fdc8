"""`unitune export`: a finished job's model in the form other tools load.

safetensors (transformers, vLLM), gguf (llama.cpp, LM Studio), gguf-lora (a llama.cpp adapter
on the base) and ollama (GGUF + Modelfile + the `ollama create` command).
"""
from __future__ import annotations

from typing import Optional

import typer

from .common import console, handle_errors, print_json

FORMATS = ("safetensors", "gguf", "gguf-lora", "ollama")


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def export(job: str = typer.Argument(..., help="Local job id (or prefix) or job directory."),
               dest: str = typer.Argument(..., help="New (or empty) directory for the export."),
               fmt: str = typer.Option("safetensors", "--format", help="safetensors, gguf, "
                                       "gguf-lora (adapter only) or ollama (GGUF + Modelfile)."),
               outtype: str = typer.Option("f16", "--outtype", help="GGUF tensor type: f16, "
                                           "f32, bf16 or q8_0."),
               quantize: Optional[str] = typer.Option(None, "--quantize", help="Quantize the "
                                                      "GGUF further with llama.cpp's quantize "
                                                      "API (q4_k_m, q5_k_m, q6_k, q4_0, …; "
                                                      "needs llama-cpp-python)."),
               llama_cpp: Optional[str] = typer.Option(None, "--llama-cpp", help="A llama.cpp "
                                                       "checkout or llama-cpp-python sdist (dir "
                                                       "or .tar.gz) holding the converter "
                                                       "(default: $UNITUNE_LLAMA_CPP)."),
               pre_tokenizer: Optional[str] = typer.Option(None, "--pre-tokenizer", help="The "
                                                           "llama.cpp pre-tokenizer to declare "
                                                           "for a BPE tokenizer it does not "
                                                           "recognise (e.g. gpt-2, llama-bpe)."),
               json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Export a local job: safetensors dir (default), GGUF, GGUF LoRA adapter, or Ollama."""
        from pathlib import Path

        from ..errors import SpecError
        from ..local.merge import export as do_export, resolve_job_dir

        fmt = fmt.lower()
        if fmt not in FORMATS:
            raise SpecError(f"unknown --format {fmt!r}", hint=f"choose one of: "
                                                              f"{', '.join(FORMATS)}")
        job_dir = resolve_job_dir(job)
        if fmt == "safetensors":
            out = do_export(job_dir, Path(dest))
            if json_out:
                print_json({"format": "safetensors", "exported": str(out)})
            else:
                console().print(f"exported to {out} (load with AutoModelForCausalLM."
                                f"from_pretrained or `vllm serve {out}`)", markup=False)
            return
        if fmt == "gguf-lora":
            if quantize:
                raise SpecError("--quantize applies to whole models, not LoRA adapters",
                                hint="use --outtype f16|f32|q8_0 for the adapter")
            from ..local.gguf import export_gguf_lora

            manifest = export_gguf_lora(job_dir, Path(dest), outtype=outtype,
                                        llama_cpp=llama_cpp)
        elif fmt == "ollama":
            from ..local.ollama import export_ollama

            manifest = export_ollama(job_dir, Path(dest), outtype=outtype, quantize_to=quantize,
                                     llama_cpp=llama_cpp, pre_tokenizer=pre_tokenizer)
        else:
            from ..local.gguf import export_gguf

            manifest = export_gguf(job_dir, Path(dest), outtype=outtype, quantize_to=quantize,
                                   llama_cpp=llama_cpp, pre_tokenizer=pre_tokenizer)
        if json_out:
            print_json(manifest)
            return
        _say(manifest)


def _say(m: dict) -> None:
    out = console()
    size = f"{m['bytes'] / 1e6:.1f} MB" if m.get("bytes") else ""
    kind = {"gguf-lora": "LoRA adapter GGUF", "ollama": "GGUF"}.get(m["format"], "GGUF")
    out.print(f"{kind}: {m['file']} ({m.get('architecture')}, {m.get('tensor_count')} tensors, "
              f"{m.get('quantize') or m.get('outtype')}, {size})", markup=False)
    if m.get("declared_pre_tokenizer"):
        out.print(f"  tokenizer: byte-level BPE declared to llama.cpp as "
                  f"'{m['declared_pre_tokenizer']}' (same pre-tokenizer configuration)",
                  markup=False, style="dim")
    if m["format"] == "gguf-lora":
        out.print(f"  use: llama-cli -m BASE.gguf --lora {m['file']}   (base: "
                  f"{m.get('base_model')})", markup=False)
    elif m["format"] == "ollama":
        out.print(f"Modelfile: {m['modelfile']}", markup=False)
        if not m.get("ollama_template"):
            out.print("  TEMPLATE left out (not translatable exactly); Ollama uses the GGUF's "
                      "chat template", markup=False, style="dim")
        out.print(f"register it: {m['register']}", markup=False)
        out.print(f"then:        ollama run {m['ollama_name']}", markup=False)
    else:
        out.print(f"  use: llama-cli -m {m['file']}  ·  unitune serve JOB --engine llama.cpp",
                  markup=False)
