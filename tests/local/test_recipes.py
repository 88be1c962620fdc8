"""The SFT and DPO recipes run in this process on the tiny model: every adapter type trains and
its loss falls, QLoRA really quantizes, the assistant mask covers <|im_end|>, merge is exact."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import make_spec

pytestmark = pytest.mark.slow


def run_recipe(spec, job_dir: Path) -> tuple[dict, list[dict]]:
    from unitune.local.jobfiles import JobFiles, read_jsonl
    from unitune.local.training import RunContext

    files = JobFiles(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    files.spec.write_text(json.dumps(spec.model_dump(mode="json")))
    files.job.write_text(json.dumps({"base_model": spec.model_for("local")}))
    ctx = RunContext(files=files, options=spec.options("local"), log=lambda _m: None)
    if spec.method == "dpo":
        from unitune.local.dpo import run
    else:
        from unitune.local.sft import run
    result = run(spec, ctx)
    files.update_status(status="succeeded", adapter=result.get("adapter"))
    return result, read_jsonl(files.metrics)


def losses(rows: list[dict]) -> list[float]:
    return [r["train_loss"] for r in rows if r.get("train_loss") is not None]


def assert_falls(values: list[float], what: str) -> None:
    assert len(values) >= 4, (what, values)
    first, last = sum(values[:2]) / 2, sum(values[-2:]) / 2
    assert last < first, f"{what}: loss did not fall: {values}"


# (adapter, learning rate, extra adapter fields)
ADAPTERS = [
    ("lora", 1e-2, {}),
    ("dora", 1e-2, {}),
    ("rslora", 5e-3, {}),
    ("qlora", 1e-2, {"bits": 4}),
    ("qlora", 1e-2, {"bits": 8}),
    ("full", 2e-3, {}),
    ("prefix", 3e-2, {"num_virtual_tokens": 8}),
    ("p_tuning", 3e-2, {"num_virtual_tokens": 8}),
    ("prompt_tuning", 1e-1, {"num_virtual_tokens": 8}),
    ("ia3", 5e-2, {}),
]


@pytest.mark.parametrize("adapter,lr,extra", ADAPTERS,
                         ids=[a + (f"-{e['bits']}bit" if "bits" in e else "") for a, lr, e in ADAPTERS])
def test_every_adapter_trains_and_loss_falls(adapter, lr, extra, tiny_home, fixed_batch_file,
                                             tmp_path):
    spec = make_spec(fixed_batch_file, adapter=adapter, lr=lr, steps=6, **extra)
    result, rows = run_recipe(spec, tmp_path / "job")
    assert result["outcome"] == "succeeded" and result["step"] == 6
    values = losses(rows)
    assert_falls(values, adapter)
    assert values[-1] < values[0]
    adapter_dir = Path(result["adapter"])
    if adapter == "full":
        assert (adapter_dir / "model.safetensors").exists()
    else:
        assert (adapter_dir / "adapter_config.json").exists()
    status = json.loads((tmp_path / "job" / "status.json").read_text())
    if adapter == "lora":  # packed + bucket-padded, yet tokens_seen counts only real tokens
        from unitune.local.models import resolve
        from unitune.local.training import load_tokenizer

        tok = load_tokenizer(resolve("unitune/tiny-chat").path)
        per_step = sum(len(tok.apply_chat_template(json.loads(line)["messages"], return_dict=False))
                       for line in fixed_batch_file.read_text().splitlines())
        assert status["effective_config"]["packing"] is True
        assert [r["tokens_seen"] for r in rows] == [per_step * k for k in range(1, 7)]
    if adapter == "qlora":
        q = status["quantized_modules"]
        assert q["count"] >= 14, q  # every linear of the 2 layers (7 each)
        assert q["types"] == (["Linear8bitLt"] if extra["bits"] == 8 else ["Linear4bit"])
    if adapter in ("prefix", "p_tuning", "prompt_tuning"):
        assert status["effective_config"]["activation_checkpointing"] is False
        assert status["effective_config"]["packing"] is False


def test_dpo_trains_and_prefers_chosen(tiny_home, dpo_file, tmp_path):
    spec = make_spec(dpo_file, method="dpo", lr=1e-2, steps=8, batch=4)
    result, rows = run_recipe(spec, tmp_path / "job")
    assert result["outcome"] == "succeeded"
    values = losses(rows)
    assert values[0] == pytest.approx(0.6931, abs=1e-3)  # log 2: policy == reference at step 1
    assert_falls(values, "dpo")
    assert rows[-1]["rewards/accuracies"] > 0.5
    assert rows[-1]["rewards/margins"] > 0


def test_assistant_mask_covers_end_of_turn(tiny_home, chat_file, tmp_path):
    """Through TRL's own preprocessing and collator: the labels are the assistant tokens, with
    every <|im_end|> that closes an assistant turn, and nothing of the user turns."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from unitune.local.data import load_rows
    from unitune.local.models import resolve
    from unitune.local.training import load_tokenizer, supports_assistant_mask
    from transformers import AutoModelForCausalLM

    path = resolve("unitune/tiny-chat").path
    tok = load_tokenizer(path)
    assert supports_assistant_mask(tok)
    rows, _ = load_rows(chat_file, "sft")
    for packing in (False, True):
        args = SFTConfig(output_dir=str(tmp_path / f"o{packing}"), assistant_only_loss=True,
                         packing=packing, max_length=1024, use_cpu=True, bf16=False,
                         report_to="none", per_device_train_batch_size=4)
        trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(path), args=args,
                             train_dataset=Dataset.from_list(rows[:8]), processing_class=tok)
        end = tok.convert_tokens_to_ids("<|im_end|>")
        start = tok.convert_tokens_to_ids("<|im_start|>")
        n = 4 if not packing else len(trainer.train_dataset)  # packed: every row (all 8 examples)
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(n)])
        labels = batch["labels"].flatten().tolist()
        trained = [t for t in labels if t != -100]
        assert trained, "assistant mask is empty"
        assert start not in trained  # no role headers, no user turns
        n_assistant_turns = sum(1 for r in rows[:8] for m in r["messages"] if m["role"] == "assistant")
        ends = trained.count(end)
        assert ends >= 1
        if not packing:
            assert ends == 4  # one closing <|im_end|> per assistant turn in the 4 examples
        else:
            assert ends == n_assistant_turns == 8
        text = tok.decode(trained)
        assert "Answer:" in text and "user" not in text


def test_template_without_generation_marks_falls_back_to_completion(tiny_home, chat_file, tmp_path):
    """A model whose template cannot mark assistant tokens still trains on the answer only."""
    import shutil

    from unitune.local.sft import MASK_FALLBACK_NOTE
    from unitune.local.models import resolve

    src = Path(resolve("unitune/tiny-chat").path)
    plain = tmp_path / "plain-model"
    shutil.copytree(src, plain)
    tmpl = (plain / "chat_template.jinja").read_text()
    (plain / "chat_template.jinja").write_text(
        tmpl.replace("{%- generation -%}", "").replace("{%- endgeneration -%}", ""))
    spec = make_spec(chat_file, steps=4)
    spec.base_model = str(plain)
    result, rows = run_recipe(spec, tmp_path / "job")
    assert result["outcome"] == "succeeded"
    status = json.loads((tmp_path / "job" / "status.json").read_text())
    assert MASK_FALLBACK_NOTE in status["notes"]
    assert "last assistant turn" in status["effective_config"]["loss_on"]


def test_merge_equals_adapter_model(tiny_home, chat_file, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from unitune.local.merge import TrainedJob, export, load_tuned, merge

    spec = make_spec(chat_file, adapter="lora", steps=4, lr=2e-2)
    run_recipe(spec, tmp_path / "job")
    job = TrainedJob(tmp_path / "job")
    tuned, tok = load_tuned(job)
    out = merge(tmp_path / "job")
    merged = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(job.base_path())
    x = tok.apply_chat_template([{"role": "user", "content": "Bonjour, ça va ?"}],
                                add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        a, b, c = tuned(**x).logits, merged(**x).logits, base(**x).logits
    assert (a - b).abs().max().item() < 1e-5
    assert (a - c).abs().max().item() > 1e-4  # the adapter did change the model
    dest = export(tmp_path / "job", tmp_path / "exported")
    for name in ("model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja"):
        assert (dest / name).exists(), name
    again = AutoModelForCausalLM.from_pretrained(dest)
    with torch.no_grad():
        assert (again(**x).logits - a).abs().max().item() < 1e-5


def test_tiny_model_is_deterministic(tiny_model_dir, tmp_path):
    from unitune.local.tiny import ensure_tiny_model, weights_digest

    again = ensure_tiny_model(tmp_path / "again")
    assert weights_digest(again) == weights_digest(tiny_model_dir)
    assert (again / "tokenizer.json").read_bytes() == (tiny_model_dir / "tokenizer.json").read_bytes()


def test_cli_generate_merge_export_on_a_trained_job(tiny_home, fixed_batch_file, tmp_path):
    from typer.testing import CliRunner

    from unitune.cli.app import app

    run_recipe(make_spec(fixed_batch_file, steps=4, lr=2e-2), tmp_path / "job")
    runner = CliRunner()
    out = runner.invoke(app, ["generate", str(tmp_path / "job"), "Bonjour !", "--compare", "--json",
                              "--max-new-tokens", "8"])
    assert out.exit_code == 0, out.output
    answer = json.loads(out.stdout)
    assert set(answer) == {"base", "tuned"}
    out = runner.invoke(app, ["merge", str(tmp_path / "job"), "-o", str(tmp_path / "m"), "--json"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "m" / "model.safetensors").exists()
    out = runner.invoke(app, ["export", str(tmp_path / "job"), str(tmp_path / "e"), "--json"])
    assert out.exit_code == 0 and (tmp_path / "e" / "chat_template.jinja").exists()

    run_recipe(make_spec(fixed_batch_file, adapter="prompt_tuning", steps=2, num_virtual_tokens=4),
               tmp_path / "pt")
    out = runner.invoke(app, ["merge", str(tmp_path / "pt")])
    assert out.exit_code == 1
    assert "virtual tokens" in out.output and "Traceback" not in out.output


@pytest.mark.parametrize("fmt", ["alpaca", "prompt_completion", "openai_dpo"])
def test_other_input_formats_train_through_the_dataset_engine(fmt, tiny_home, tmp_path):
    from unitune.local.synthetic import write_jsonl

    if fmt == "alpaca":
        rows = [{"instruction": "Translate to French", "input": f"sentence {i}",
                 "output": f"Answer: phrase {i}"} for i in range(4)]
    elif fmt == "prompt_completion":
        rows = [{"prompt": f"Question {i}?", "completion": f"Answer: {i}"} for i in range(4)]
    else:
        rows = [{"input": {"messages": [{"role": "user", "content": f"Question {i}?"}]},
                 "preferred_output": [{"role": "assistant", "content": f"Answer: {i}"}],
                 "non_preferred_output": [{"role": "assistant", "content": "NO"}]} for i in range(4)]
    data = write_jsonl(tmp_path / f"{fmt}.jsonl", rows)
    method = "dpo" if fmt == "openai_dpo" else "sft"
    result, metrics = run_recipe(make_spec(data, method=method, steps=4, lr=2e-2), tmp_path / "job")
    assert result["outcome"] == "succeeded"
    assert_falls(losses(metrics), fmt)
    if method == "sft":
        status = json.loads((tmp_path / "job" / "status.json").read_text())
        assert status["effective_config"]["loss_on"].startswith("assistant tokens")
