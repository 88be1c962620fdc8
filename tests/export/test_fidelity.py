"""Opt-in fidelity (`pytest -m gguf_fidelity tests/export tests/serve`): the exported GGUF run by
llama.cpp (llama-cpp-python) against transformers on the same token ids.

llama-cpp-python takes ~11-20 min to build on 2 cores, so it is not part of the default run: with
`-m gguf_fidelity` the fixture builds it once into the test cache (UNITUNE_TEST_CACHE, default
~/.cache/unitune-tests/llama-cpp-python-site) and later runs reuse it; without the marker these
tests run only where llama-cpp-python is already installed or cached, else they skip."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from .trained import llama_cpp_site

pytestmark = [pytest.mark.slow, pytest.mark.gguf_fidelity]
TEXTS = ["<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
         "<|im_start|>system\nYou are brief.<|im_end|>\n<|im_start|>user\nL'eau bout à cent "
         "degrés, 3.14  ok\n\n<|im_end|>\n<|im_start|>assistant\nOui",
         "Numbers: 0 1 2 33 444 — ç, ü, 🦙 and   trailing spaces   "]


@pytest.fixture(scope="session")
def llama_cpp(request):
    selected = "gguf_fidelity" in (request.config.getoption("markexpr") or "")
    site = llama_cpp_site(build=selected)
    if site is None:
        pytest.skip("llama-cpp-python is not installed or cached: run `pytest -m gguf_fidelity "
                    "tests/export tests/serve` once to build it into the test cache (~11-20 min)")
    if str(site) not in sys.path:
        sys.path.insert(0, str(site))
    import llama_cpp

    return llama_cpp


@pytest.fixture(scope="module")
def reference(trained):
    """The merged model in transformers, and its logits per text."""
    import torch

    from unitune.local.merge import TrainedJob, load_tuned

    model, tok = load_tuned(TrainedJob(trained.job_dir))
    model = model.merge_and_unload().eval()
    out = {}
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        with torch.no_grad():
            out[text] = (ids, model(torch.tensor([ids])).logits[0].numpy())
    return out


def _logits(llama_cpp, ids, **kw):
    # llama.cpp keeps its KV cache in f16 by default: f32 here, so the comparison measures the
    # exported weights, not the cache's rounding
    kw.setdefault("type_k", llama_cpp.GGML_TYPE_F32)
    kw.setdefault("type_v", llama_cpp.GGML_TYPE_F32)
    llm = llama_cpp.Llama(logits_all=True, n_ctx=256, verbose=False, **kw)
    llm.eval(ids)
    return np.array(llm.scores[:len(ids)]), llm


def _compare(llama_cpp, reference, **kw):
    worst, agree, n = 0.0, 0, 0
    for text, (ids, ref) in reference.items():
        got, llm = _logits(llama_cpp, ids, **kw)
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids, text
        llm.close()
        worst = max(worst, float(np.abs(got - ref).max()))
        agree += int((got.argmax(-1) == ref.argmax(-1)).sum())
        n += len(ids)
    return worst, agree / n


def test_f32_logits_match_transformers(llama_cpp, reference, in_job_home, tmp_path):
    from unitune.local.gguf import export_gguf

    m = export_gguf(in_job_home.job_dir, tmp_path / "f32", outtype="f32")
    worst, agree = _compare(llama_cpp, reference, model_path=m["file"])
    print(f"\nf32: max |logit difference| vs transformers {worst:.2e}")
    assert worst < 1e-3 and agree == 1.0, (worst, agree)


def test_f16_and_quantized(llama_cpp, reference, in_job_home, tmp_path):
    from unitune.local.gguf import export_gguf

    m = export_gguf(in_job_home.job_dir, tmp_path / "f16", outtype="f16")
    worst, agree = _compare(llama_cpp, reference, model_path=m["file"])
    print(f"\nf16: max |logit difference| {worst:.2e}, argmax agreement {agree:.3f}")
    assert worst < 2e-2 and agree >= 0.95, (worst, agree)
    q = export_gguf(in_job_home.job_dir, tmp_path / "q", outtype="f16", quantize_to="q8_0")
    from gguf import GGUFReader

    assert "Q8_0" in {t.tensor_type.name for t in GGUFReader(q["file"]).tensors}
    worst, agree = _compare(llama_cpp, reference, model_path=q["file"])
    print(f"q8_0: max |logit difference| {worst:.2e}, argmax agreement {agree:.3f}")
    assert agree >= 0.8, (worst, agree)


def test_lora_gguf_on_the_base_matches_the_merged_model(llama_cpp, reference, in_job_home,
                                                        tmp_path):
    from unitune.local.gguf import export_gguf_lora
    from unitune.local.llamacpp import CONVERT_HF, find_script, run_script

    lora = export_gguf_lora(in_job_home.job_dir, tmp_path / "lora", outtype="f32")
    base = tmp_path / "base-f32.gguf"
    run_script(find_script(CONVERT_HF), [str(in_job_home.home / "models" / "tiny-chat"),
                                         "--outfile", str(base), "--outtype", "f32"],
               declare_pre="gpt-2")
    worst, agree = _compare(llama_cpp, reference, model_path=str(base), lora_path=lora["file"])
    print(f"\nLoRA GGUF on the base: max |logit difference| {worst:.2e}")
    assert worst < 1e-3 and agree == 1.0, (worst, agree)
