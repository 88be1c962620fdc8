"""`unitune import` on the tools' own published example configs (tests/importers/fixtures, with
their licence notices in NOTICE): every field is either mapped to the spec or listed with the
reason, and the spec written is a valid unitune spec."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from unitune.errors import SpecError
from unitune.importers import import_config
from unitune.spec import JobSpec

FIX = Path(__file__).parent / "fixtures"
ALL = [("axolotl", p) for p in sorted((FIX / "axolotl").iterdir())] + \
      [("llama-factory", p) for p in sorted((FIX / "llama-factory").iterdir())] + \
      [("openai-job", p) for p in sorted((FIX / "openai-job").iterdir())
       if "reinforcement" not in p.name] + \
      [("trl", p) for p in sorted((FIX / "trl").iterdir())]


def _top(source: str) -> str:
    return source.split(".")[0].split("[")[0]


@pytest.mark.parametrize("tool,path", ALL, ids=[f"{t}-{p.name}" for t, p in ALL])
def test_every_field_is_mapped_or_listed(tool, path, tmp_path):
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    result = import_config(tool, path, out_dir=tmp_path)
    accounted = {_top(m.source) for m in result.mapped} | {_top(u.source) for u in
                                                            result.unmapped} | \
        {_top(e) for e in result.empty}
    missing = set(raw) - accounted
    assert not missing, f"fields neither mapped nor listed: {sorted(missing)}"
    for u in result.unmapped:
        assert u.reason and u.kind in ("unsupported", "data", "equivalent", "infrastructure",
                                       "job-state", "default")
    spec = JobSpec.from_dict(result.spec)  # a valid unitune spec
    assert spec.name and spec.data.train
    # the YAML written is the same spec, with every not-mapped field named in its header
    text = result.to_yaml()
    assert yaml.safe_load(text) == result.spec
    for u in result.unmapped:
        if u.kind in ("unsupported", "data", "equivalent", "infrastructure", "job-state"):
            assert u.source in text


def test_axolotl_lora_1b(tmp_path):
    r = import_config("axolotl", FIX / "axolotl/lora-1b.yml", out_dir=tmp_path)
    s = r.spec
    assert s["backend"] == "local" and s["models"]["local"] == "NousResearch/Llama-3.2-1B"
    assert s["adapter"] == {"type": "lora", "r": 16, "alpha": 32, "dropout": 0.05,
                            "target_modules": ["gate_proj", "down_proj", "up_proj", "q_proj",
                                               "v_proj", "k_proj", "o_proj"]}
    hp = s["hyperparameters"]
    assert (hp["batch_size"], hp["gradient_accumulation_steps"], hp["epochs"]) == (4, 2, 1)
    assert hp["learning_rate"] == 0.0002 and hp["max_seq_length"] == 2048
    assert s["data"]["validation"] == 0.1 and s["data"]["format"] == "alpaca"
    assert s["backend_options"]["local"]["per_device_batch_size"] == 2
    assert s["backend_options"]["local"]["attn_implementation"] == "flash_attention_2"
    # a Hub dataset: a local path in the spec and the export command as a step
    assert s["data"]["train"] == "data/teknium_gpt4-llm-cleaned.jsonl"
    assert any("teknium/GPT4-LLM-Cleaned" in step and "load_dataset" in step
               for step in r.steps())
    reasons = {u.source: u.reason for u in r.unmapped}
    assert "optimizer" in reasons and "AdamW" in reasons["optimizer"]
    assert set(r.empty) >= {"wandb_project", "lora_model_dir", "resume_from_checkpoint"}
    # one flag moves it: a model for every cloud backend
    assert {"openai", "bedrock", "vertex", "azure"} <= set(s["models"])


def test_axolotl_quantized_and_dpo(tmp_path):
    q = import_config("axolotl", FIX / "axolotl/qlora-1b.yml", out_dir=tmp_path).spec
    assert q["adapter"]["type"] == "qlora" and q["adapter"]["bits"] == 4
    assert (q["adapter"]["r"], q["adapter"]["alpha"]) == (32, 16)
    d = import_config("axolotl", FIX / "axolotl/instruct-dpo-lora-8b.yml", out_dir=tmp_path)
    s = d.spec
    assert s["method"] == "dpo"
    assert s["adapter"]["type"] == "qlora" and s["adapter"]["bits"] == 8  # lora + load_in_8bit
    assert s["adapter"]["target_modules"] == "all-linear"
    assert s["hyperparameters"]["epochs"] == 4 and s["data"]["validation"] == 0.05
    assert "format" not in s["data"]  # DPO data: detected from the file
    assert any(u.source == "datasets[0].field_messages" for u in d.unmapped)
    f = import_config("axolotl", FIX / "axolotl/fft-8b.yaml", out_dir=tmp_path).spec
    assert f["adapter"]["type"] == "full"
    assert f["hyperparameters"]["learning_rate"] == 2e-5  # YAML "2e-5" is a string in YAML 1.1


def test_llama_factory_examples(tmp_path):
    r = import_config("llama-factory", FIX / "llama-factory/qwen3_lora_sft.yaml",
                      out_dir=tmp_path)
    s = r.spec
    assert s["models"]["local"] == "Qwen/Qwen3-4B-Instruct-2507"
    assert s["adapter"] == {"type": "lora", "r": 8, "target_modules": "all-linear"}
    hp = s["hyperparameters"]
    assert (hp["batch_size"], hp["epochs"], hp["learning_rate"], hp["warmup_ratio"]) == \
        (8, 3, 1e-4, 0.1)
    assert hp["max_seq_length"] == 2048
    assert s["backend_options"]["local"] == {"per_device_batch_size": 1, "lr_scheduler": "cosine",
                                             "precision": "bf16", "logging_steps": 10,
                                             "save_steps": 500}
    reasons = {u.source: u for u in r.unmapped}
    assert "template" in reasons and "max_samples" in reasons
    assert reasons["dataset"].value == "alpaca_en_demo" and reasons["dataset"].kind == "data"
    assert any("'identity'" in step for step in r.steps())
    q = import_config("llama-factory", FIX / "llama-factory/qwen3_lora_sft_otfq.yaml",
                      out_dir=tmp_path).spec
    assert q["adapter"]["type"] == "qlora" and q["adapter"]["bits"] == 4
    f = import_config("llama-factory", FIX / "llama-factory/qwen3_full_sft.yaml",
                      out_dir=tmp_path).spec
    assert f["adapter"]["type"] == "full"
    assert f["backend_options"]["local"]["strategy"] == "deepspeed"
    d = import_config("llama-factory", FIX / "llama-factory/qwen3_lora_dpo.yaml",
                      out_dir=tmp_path).spec
    assert d["method"] == "dpo" and d["hyperparameters"]["beta"] == 0.1
    assert d["hyperparameters"]["learning_rate"] == 5e-6


def test_llama_factory_resolves_dataset_info(tmp_path):
    """With LLaMA-Factory's dataset_info.json beside the config, the dataset's file is used."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data/dataset_info.json").write_text(json.dumps({
        "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
        "chats": {"file_name": "chats.jsonl", "formatting": "sharegpt",
                  "columns": {"messages": "messages"},
                  "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                           "assistant_tag": "assistant"}}}))
    (tmp_path / "data/alpaca_en_demo.json").write_text(json.dumps(
        [{"instruction": "hi", "input": "", "output": "hello"}]))
    (tmp_path / "data/chats.jsonl").write_text(json.dumps({"messages": [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}) + "\n")
    cfg = yaml.safe_load((FIX / "llama-factory/qwen3_lora_sft.yaml").read_text())
    cfg["dataset"] = "alpaca_en_demo"
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(cfg))
    r = import_config("llama-factory", tmp_path / "a.yaml", out_dir=tmp_path)
    assert r.spec["data"]["format"] == "alpaca"
    assert r.spec["data"]["train"] == "data/alpaca_en_demo.jsonl"
    assert "unitune convert data/alpaca_en_demo.json --to alpaca -o data/alpaca_en_demo.jsonl" \
        in r.steps()[0]
    cfg["dataset"] = "chats"
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(cfg))
    r = import_config("llama-factory", tmp_path / "b.yaml", out_dir=tmp_path)
    assert r.spec["data"] == {"train": "data/chats.jsonl", "format": "messages"}
    assert not r.steps()  # the JSONL is used as it is


def test_openai_job_objects(tmp_path):
    r = import_config("openai-job", FIX / "openai-job/create_epochs.json", out_dir=tmp_path)
    s = r.spec
    assert s["backend"] == "openai" and s["models"]["openai"] == "gpt-4o-mini"
    assert s["hyperparameters"] == {"epochs": 2, "batch_size": "auto", "seed": 683058546}
    assert s["data"]["train"] == "data/file-abc123.jsonl"
    kinds = {u.source: u.kind for u in r.unmapped}
    assert kinds["status"] == "job-state" and kinds["id"] == "job-state"
    assert kinds["hyperparameters"] == "job-state"  # the deprecated copy of method.*
    d = import_config("openai-job", FIX / "openai-job/create_dpo.json", out_dir=tmp_path).spec
    assert d["method"] == "dpo" and d["hyperparameters"]["beta"] == 0.1
    assert d["data"]["validation"] == "data/file-123-validation.jsonl"
    o = import_config("openai-job", FIX / "openai-job/job_object.json", out_dir=tmp_path).spec
    assert o["metadata"] == {"key": "value"}
    assert o["hyperparameters"]["learning_rate_multiplier"] == 1.0
    with pytest.raises(SpecError, match="reinforcement"):
        import_config("openai-job", FIX / "openai-job/create_reinforcement.json",
                      out_dir=tmp_path)


def test_trl_dump_and_cli_config(tmp_path):
    r = import_config("trl", FIX / "trl/sft_config_dump.json", out_dir=tmp_path,
                      base_model="Qwen/Qwen2.5-0.5B-Instruct")
    s = r.spec
    assert s["models"]["local"] == "Qwen/Qwen2.5-0.5B-Instruct"
    hp = s["hyperparameters"]
    assert (hp["epochs"], hp["batch_size"], hp["gradient_accumulation_steps"]) == (3, 16, 4)
    assert (hp["learning_rate"], hp["warmup_ratio"], hp["max_seq_length"], hp["seed"]) == \
        (2e-4, 0.03, 1024, 42)
    assert s["backend_options"]["local"]["packing"] is True
    defaults = [u for u in r.unmapped if u.kind == "default"]
    assert len(defaults) > 50  # a dump holds every TrainingArguments field
    assert not any(step.startswith("the dump does not name the model") for step in r.steps())
    c = import_config("trl", FIX / "trl/example_config.yaml", out_dir=tmp_path).spec
    assert c["models"]["local"] == "Qwen/Qwen2.5-0.5B"
    assert c["hyperparameters"]["learning_rate"] == 1e-4
    assert c["data"]["train"] == "data/stanfordnlp_imdb.jsonl"


@pytest.mark.parametrize("text,match", [
    ("base_model: x\nrl: kto\ndatasets: [{path: a.jsonl}]\n", "rl: kto"),
    ("base_model: x\nadapter: llama-adapter\ndatasets: [{path: a.jsonl}]\n", "llama-adapter"),
    ("datasets: [{path: a.jsonl}]\n", "base_model"),
    ("- just\n- a list\n", "mapping"),
])
def test_axolotl_refusals_name_the_field(tmp_path, text, match):
    p = tmp_path / "c.yml"
    p.write_text(text)
    with pytest.raises(SpecError, match=match):
        import_config("axolotl", p, out_dir=tmp_path)


def test_data_override(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n")
    r = import_config("axolotl", FIX / "axolotl/lora-1b.yml", out_dir=tmp_path, data=str(data))
    assert r.spec["data"]["train"] == "mine.jsonl"
    assert not r.steps()
