"""GGUF / GGUF-LoRA / Ollama export through llama.cpp's own converter (default run: no
llama-cpp-python needed). Every export is read back with `gguf.GGUFReader` and its weights are
compared with the merged transformers model / the PEFT adapter tensor by tensor."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from unitune.cli.app import app

pytestmark = pytest.mark.slow


def _export(job_id: str, dest: Path, *args: str) -> dict:
    res = CliRunner().invoke(app, ["export", job_id, str(dest), *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _merged_state(job_dir: Path) -> dict:
    from unitune.local.merge import TrainedJob, load_tuned

    model, _tok = load_tuned(TrainedJob(job_dir))
    return {k: v.detach().numpy() for k, v in model.merge_and_unload().state_dict().items()}


def test_gguf_f32_reads_back_and_holds_the_merged_weights(in_job_home, tmp_path):
    from gguf import GGUFReader

    from unitune.local.tiny import CHAT_TEMPLATE

    t = in_job_home
    m = _export(t.job_id, tmp_path / "out", "--format", "gguf", "--outtype", "f32")
    reader = GGUFReader(m["file"])
    field = lambda k: reader.fields[k].contents()  # noqa: E731
    assert field("general.architecture") == "llama" == m["architecture"]
    assert len(reader.tensors) == 2 * 9 + 3 == m["tensor_count"]
    assert field("tokenizer.chat_template") == CHAT_TEMPLATE.replace(
        "{%- generation -%}", "").replace("{%- endgeneration -%}", "")
    assert "{%- generation" not in m["chat_template"]
    assert field("tokenizer.ggml.model") == "gpt2" and field("tokenizer.ggml.pre") == "gpt-2"
    assert m["declared_pre_tokenizer"] == "gpt-2"
    assert field("llama.context_length") == 1024 and len(field("tokenizer.ggml.tokens")) == 512
    # the weights are the merged model's (q/k are permuted by the converter for llama.cpp's
    # rotary layout; every other tensor must be bit-identical in f32)
    merged = _merged_state(t.job_dir)
    names = {"token_embd.weight": "model.embed_tokens.weight", "output.weight": "lm_head.weight",
             "output_norm.weight": "model.norm.weight"}
    for i in range(2):
        names.update({f"blk.{i}.attn_v.weight": f"model.layers.{i}.self_attn.v_proj.weight",
                      f"blk.{i}.attn_output.weight": f"model.layers.{i}.self_attn.o_proj.weight",
                      f"blk.{i}.ffn_down.weight": f"model.layers.{i}.mlp.down_proj.weight",
                      f"blk.{i}.ffn_up.weight": f"model.layers.{i}.mlp.up_proj.weight",
                      f"blk.{i}.ffn_gate.weight": f"model.layers.{i}.mlp.gate_proj.weight"})
    tensors = {x.name: np.asarray(x.data) for x in reader.tensors}
    for gname, hname in names.items():
        assert np.array_equal(tensors[gname], merged[hname]), gname
    # the LoRA really changed what was exported (the merge is not a no-op)
    from safetensors.numpy import load_file

    base = load_file(str(t.home / "models" / "tiny-chat" / "model.safetensors"))
    assert not np.array_equal(tensors["blk.0.attn_v.weight"],
                              base["model.layers.0.self_attn.v_proj.weight"])
    # the export is listed with the job (where `unitune serve` finds it)
    rows = [json.loads(x) for x in (t.job_dir / "exports.jsonl").read_text().splitlines()]
    assert rows[-1]["file"] == m["file"]


def test_gguf_f16_and_q8_0(in_job_home, tmp_path):
    from gguf import GGUFReader

    t = in_job_home
    for outtype, kind in (("f16", "F16"), ("q8_0", "Q8_0")):
        m = _export(t.job_id, tmp_path / outtype, "--format", "gguf", "--outtype", outtype)
        kinds = {x.tensor_type.name for x in GGUFReader(m["file"]).tensors}
        assert kind in kinds, (outtype, kinds)  # norms stay F32; rows of 176 don't fit q8_0
        assert Path(m["file"]).name == f"exp-{outtype}.gguf"


def test_gguf_lora_holds_the_adapter(in_job_home, tmp_path):
    from gguf import GGUFReader
    from safetensors.numpy import load_file

    t = in_job_home
    m = _export(t.job_id, tmp_path / "lora", "--format", "gguf-lora", "--outtype", "f32")
    reader = GGUFReader(m["file"])
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["adapter.type"].contents() == "lora"
    assert reader.fields["adapter.lora.alpha"].contents() == 8.0 == m["lora_alpha"]
    peft = load_file(str(t.job_dir / "adapter" / "adapter_model.safetensors"))
    assert len(reader.tensors) == len(peft) == 2 * 7 * 2  # A and B per linear, 7 per layer
    tensors = {x.name: np.asarray(x.data) for x in reader.tensors}
    a = peft["base_model.model.model.layers.1.mlp.down_proj.lora_A.weight"]
    b = peft["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"]
    assert np.array_equal(tensors["blk.1.ffn_down.weight.lora_a"], a)
    assert np.array_equal(tensors["blk.1.ffn_down.weight.lora_b"], b)


def _copy_job(src: Path, dest: Path, *, adapter_config: dict | None = None,
              spec_adapter: dict | None = None) -> Path:
    """A copy of a finished job folder (adapter + job files), optionally changed."""
    dest.mkdir(parents=True)
    shutil.copytree(src / "adapter", dest / "adapter")
    for name in ("spec.json", "job.json"):
        shutil.copy2(src / name, dest / name)
    status = json.loads((src / "status.json").read_text())
    status["adapter"] = str(dest / "adapter")
    (dest / "status.json").write_text(json.dumps(status))
    if adapter_config:
        cfg = json.loads((dest / "adapter" / "adapter_config.json").read_text())
        cfg.update(adapter_config)
        (dest / "adapter" / "adapter_config.json").write_text(json.dumps(cfg))
    if spec_adapter:
        spec = json.loads((dest / "spec.json").read_text())
        spec["adapter"].update(spec_adapter)
        (dest / "spec.json").write_text(json.dumps(spec))
    return dest


def test_rslora_scale_is_carried_as_alpha(in_job_home, tmp_path):
    from unitune.local.gguf import export_gguf_lora

    job = _copy_job(in_job_home.job_dir, tmp_path / "job", adapter_config={"use_rslora": True},
                    spec_adapter={"type": "rslora"})
    m = export_gguf_lora(job, tmp_path / "out")
    # llama.cpp scales by alpha/r; rsLoRA by alpha/sqrt(r): alpha' = 8·sqrt(4) = 16
    assert m["lora_alpha"] == pytest.approx(16.0)


def test_ollama_modelfile(in_job_home, tmp_path):
    t = in_job_home
    m = _export(t.job_id, tmp_path / "ollama", "--format", "ollama")
    text = (tmp_path / "ollama" / "Modelfile").read_text()
    assert text == (
        "FROM ./exp-f16.gguf\n\n"
        'TEMPLATE """{{ range .Messages }}'
        '{{ if eq .Role "system" }}<|im_start|>system\n{{ .Content }}<|im_end|>\n'
        '{{ else if eq .Role "user" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n'
        '{{ else if eq .Role "assistant" }}<|im_start|>assistant\n{{ .Content }}<|im_end|>\n'
        '{{ end }}{{ end }}<|im_start|>assistant\n"""\n\n'
        'PARAMETER stop "<|im_end|>"\n'
        "PARAMETER temperature 0.7\nPARAMETER top_p 0.9\nPARAMETER num_ctx 1024\n")
    assert m["ollama_name"] == f"exp:{t.job_id}"
    assert m["register"] == f"ollama create exp:{t.job_id} -f {tmp_path / 'ollama' / 'Modelfile'}"
    assert (tmp_path / "ollama" / "exp-f16.gguf").exists()


# -- refusals: one clear error, nothing left behind ------------------------------------------------
def test_unknown_bpe_pre_tokenizer_is_refused_with_the_reason(in_job_home, tmp_path):
    """A full model whose byte-level BPE adds a prefix space: llama.cpp knows no such
    pre-tokenizer by hash, and unitune does not declare one it cannot vouch for."""
    from unitune.local.merge import merge

    t = in_job_home
    full = tmp_path / "fulljob"
    _copy_job(t.job_dir, full, spec_adapter={"type": "full"})
    shutil.rmtree(full / "adapter")
    merge(t.job_dir, full / "adapter")  # a full model where a full fine-tune saves it
    tok = json.loads((full / "adapter" / "tokenizer.json").read_text())
    tok["pre_tokenizer"]["add_prefix_space"] = True
    (full / "adapter" / "tokenizer.json").write_text(json.dumps(tok))
    res = CliRunner().invoke(app, ["export", str(full), str(tmp_path / "out"), "--format",
                                   "gguf"])
    assert res.exit_code == 1, res.output
    assert "accepts only BPE pre-tokenizers it knows" in res.output
    assert "--pre-tokenizer" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists()


def test_refusals(in_job_home, tmp_path, monkeypatch):
    t = in_job_home
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    res = CliRunner().invoke(app, ["export", t.job_id, str(busy), "--format", "gguf"])
    assert res.exit_code == 1 and "not empty" in res.output
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    res = CliRunner().invoke(app, ["export", t.job_id, str(tmp_path / "x"), "--format", "bin"])
    assert res.exit_code == 2 and "safetensors, gguf, gguf-lora, ollama" in res.output
    res = CliRunner().invoke(app, ["export", t.job_id, str(tmp_path / "x"), "--format", "gguf",
                                   "--outtype", "q4_k"])
    assert res.exit_code == 1 and "f32, f16, bf16, q8_0" in res.output
    prefix = _copy_job(t.job_dir, tmp_path / "pjob", spec_adapter={"type": "prefix"})
    res = CliRunner().invoke(app, ["export", str(prefix), str(tmp_path / "x"), "--format",
                                   "gguf"])
    assert res.exit_code == 1 and "virtual tokens" in res.output
    dora = _copy_job(t.job_dir, tmp_path / "djob", adapter_config={"use_dora": True},
                     spec_adapter={"type": "dora"})
    res = CliRunner().invoke(app, ["export", str(dora), str(tmp_path / "x"), "--format",
                                   "gguf-lora"])
    assert res.exit_code == 1 and "DoRA" in res.output and "--format gguf" in res.output
    monkeypatch.setenv("UNITUNE_LLAMA_CPP", str(tmp_path / "nowhere"))
    res = CliRunner().invoke(app, ["export", t.job_id, str(tmp_path / "x"), "--format", "gguf"])
    assert res.exit_code == 2 and "convert_hf_to_gguf.py was not found" in res.output
    assert "pip download --no-deps --no-binary :all: llama-cpp-python" in res.output
    assert not (tmp_path / "x").exists()


def test_quantize_without_llama_cpp_python_says_how(in_job_home, tmp_path):
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is not None:
        pytest.skip("llama-cpp-python is installed here: see test_fidelity.py")
    res = CliRunner().invoke(app, ["export", in_job_home.job_id, str(tmp_path / "q"),
                                   "--format", "gguf", "--quantize", "q4_k_m"])
    assert res.exit_code == 2 and "llama-cpp-python" in res.output and "q8_0" in res.output
    assert not (tmp_path / "q").exists()
