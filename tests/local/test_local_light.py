"""Fast checks of the local provider's pure parts: defaults by hardware, the translation table,
the pre-checks that refuse a job before it exists, model resolution, typed options, the job files
`create` writes, launcher commands, BFD row planning. No training."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from unitune.errors import SpecError, UnituneError
from unitune.spec import JobSpec


def spec_of(**kw) -> JobSpec:
    raw = {"name": "t", "backend": "local", "base_model": "unitune/tiny-chat",
           "data": {"train": "train.jsonl"}}
    for key, value in kw.items():
        raw[key] = value
    return JobSpec.from_dict(raw)


def test_precision_and_accumulation_follow_the_hardware():
    from unitune.local.hardware import Hardware, choose

    spec = spec_of(hyperparameters={"batch_size": 32})
    cpu = choose(spec, Hardware("cpu", bf16=False, ram_gb=8, cpu_count=2))
    assert cpu.precision == "fp32" and "22x" in cpu.why["precision"]
    assert cpu.per_device_batch_size * cpu.gradient_accumulation_steps == 32
    assert cpu.gradient_accumulation_steps == 4  # 8 per device, accumulated to 32
    assert choose(spec, Hardware("cpu", bf16=True, ram_gb=8)).precision == "bf16"
    gpu = choose(spec, Hardware("cuda", gpus=2, gpu_name="H100", gpu_memory_gb=80, bf16=True),
                 world_size=2)
    assert gpu.precision == "bf16" and gpu.effective_batch_size == 32 and gpu.world_size == 2
    old = choose(spec, Hardware("cuda", gpus=1, gpu_name="T4", gpu_memory_gb=16, bf16=False))
    assert old.precision == "fp16"
    forced = choose(spec, Hardware("cpu"), options={"precision": "bf16"})
    assert forced.precision == "bf16" and "backend_options" in forced.why["precision"]
    with pytest.raises(SpecError):
        choose(spec, Hardware("cpu"), options={"precision": "int3"})


def test_checkpointing_only_when_memory_needs_it_and_never_for_prefix():
    from unitune.local.hardware import Hardware, choose

    spec = spec_of(adapter={"type": "full"}, hyperparameters={"max_seq_length": 4096, "batch_size": 8})
    big = dict(n_params=7_000_000_000, hidden=4096, layers=32)
    small_gpu = Hardware("cuda", gpus=1, gpu_name="L4", gpu_memory_gb=24, bf16=True)
    assert choose(spec, small_gpu, **big).activation_checkpointing is True
    tiny = choose(spec, small_gpu, n_params=10_000_000, hidden=256, layers=4)
    assert tiny.activation_checkpointing is False
    prefix = spec_of(adapter={"type": "prefix"})
    eff = choose(prefix, small_gpu, **big)
    assert eff.activation_checkpointing is False and eff.packing is False
    dpo = spec_of(method="dpo")
    assert choose(dpo, small_gpu).packing is False


CHAT_LINE = ('{"messages": [{"role": "user", "content": "hi"}, '
             '{"role": "assistant", "content": "yo"}]}\n')


def plan_of(spec: JobSpec):
    from unitune.local.backend import LocalProvider
    from unitune.pipeline import Pipeline

    return Pipeline(LocalProvider()).plan(spec)


def test_plan_translates_every_field_and_says_what_is_not_applied(tmp_path):
    (tmp_path / "train.jsonl").write_text(CHAT_LINE)
    spec = JobSpec.from_dict({"name": "t", "base_model": "unitune/tiny-chat",
                              "data": {"train": "train.jsonl"}, "adapter": {"type": "qlora", "bits": 8},
                              "hyperparameters": {"learning_rate_multiplier": 2.0, "beta": 0.2},
                              "suffix": "x"}, source_dir=str(tmp_path))
    plan = plan_of(spec)
    rows = {r.field: r for r in plan.rows}
    assert rows["adapter.type"].vendor_value["quantization"] == "bitsandbytes 8-bit"
    for field in ("hyperparameters.learning_rate_multiplier", "hyperparameters.beta", "suffix"):
        assert rows[field].applied is False and rows[field].note.startswith("not applied")
    assert rows["data.train"].vendor_param == "train_dataset"
    assert plan.ready, plan.problems
    assert plan.request["spec"]["data"]["train"] == str((tmp_path / "train.jsonl").resolve())
    assert plan.request["job_id"] == "<job-id>" and plan.request["job_dir"] == "<job-dir>"


def test_plan_does_not_import_torch(tmp_path):
    import subprocess

    (tmp_path / "train.jsonl").write_text(CHAT_LINE)
    code = ("import sys; from unitune.spec import JobSpec; from unitune.local.backend import "
            "LocalProvider; from unitune.pipeline import Pipeline; "
            "s = JobSpec.from_dict({'name': 't', 'base_model': 'unitune/tiny-chat', "
            f"'data': {{'train': {str(tmp_path / 'train.jsonl')!r}}}}}); "
            "p = Pipeline(LocalProvider()); assert p.plan(s).ready; p.prepare_submission(s); "
            "heavy = [m for m in ('torch', 'transformers', 'trl', 'peft') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(sys.platform == "darwin", reason="mps exists on macOS")
def test_every_problem_in_one_go_with_field_and_fix(tmp_path):
    """Missing data, an unknown model, an adapter on lm_head and an Apple GPU off macOS: all
    reported by one plan, each naming its field (or file) and the fix; train refuses before any
    job exists."""
    from unitune.errors import UnituneError
    from unitune.local.backend import LocalProvider
    from unitune.pipeline import Pipeline

    spec = JobSpec.from_dict({"name": "t", "base_model": str(tmp_path / "nope"),
                              "data": {"train": "missing.jsonl"},
                              "adapter": {"target_modules": ["q_proj", "lm_head"]},
                              "backend_options": {"local": {"device": "mps"}}},
                             source_dir=str(tmp_path))
    plan = plan_of(spec)
    codes = {p.code: p for p in plan.problems}
    assert {"file_not_found", "lm_head_adapter", "model_not_found",
            "no_gpu"} <= set(codes), codes
    assert not plan.ready
    assert codes["file_not_found"].path == "data.train" and codes["file_not_found"].hint
    assert codes["model_not_found"].path == "base_model"
    assert codes["no_gpu"].path == "backend_options.local.device"
    with pytest.raises(UnituneError) as err:
        Pipeline(LocalProvider()).prepare_submission(spec)
    assert "4 problem(s)" in err.value.message
    assert not (tmp_path / "jobs").exists()


@pytest.mark.parametrize("content,code", [("", "empty_file"), ("a,b\n1,2\n", "not_jsonl"),
                                          ('{"prompt": "p", "chosen": "a", "rejected": "b"}\n',
                                           "wrong_data_kind")])
def test_data_the_trainer_cannot_read_is_refused_at_plan(tmp_path, content, code):
    (tmp_path / "train.jsonl").write_text(content)
    spec = spec_of(data={"train": str(tmp_path / "train.jsonl")})
    plan = plan_of(spec)
    assert not plan.ready and code in {p.code for p in plan.problems}
    bad = [p for p in plan.problems if p.code == code][0]
    assert bad.file == str(tmp_path / "train.jsonl")


def test_dpo_needs_preference_pairs(tmp_path):
    (tmp_path / "train.jsonl").write_text(CHAT_LINE)
    plan = plan_of(spec_of(method="dpo", data={"train": str(tmp_path / "train.jsonl")}))
    wrong = [p for p in plan.problems if p.code == "wrong_data_kind"]
    assert wrong and wrong[0].line == 1 and "preference" in wrong[0].message


def test_models_resolve_offline_or_are_refused(tmp_path, monkeypatch):
    from unitune.local.preflight import resolve_model

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    model, problems = resolve_model("someorg/not-cached", None, "base_model")
    assert problems[0].code == "model_not_found" and "someorg/not-cached" in problems[0].message
    assert "hf download someorg/not-cached" in problems[0].hint
    snap = tmp_path / "hub" / "models--someorg--cached" / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    assert resolve_model("someorg/cached", None, "base_model") == ("someorg/cached", [])
    (tmp_path / "spec" / "my-model").mkdir(parents=True)
    (tmp_path / "spec" / "my-model" / "config.json").write_text("{}")
    model, problems = resolve_model("./my-model", str(tmp_path / "spec"), "models.local")
    assert problems == [] and model == str((tmp_path / "spec" / "my-model").resolve())
    (tmp_path / "spec" / "empty").mkdir()
    _, problems = resolve_model("./empty", str(tmp_path / "spec"), "models.local")
    assert "no config.json" in problems[0].message and problems[0].path == "models.local"
    _, problems = resolve_model("./gone", str(tmp_path / "spec"), "base_model")
    assert "does not exist" in problems[0].message


def test_options_are_typed_and_read_from_the_environment(tmp_path, monkeypatch):
    (tmp_path / "train.jsonl").write_text(CHAT_LINE)
    monkeypatch.setenv("UNITUNE_LOCAL_SAVE_STEPS", "7")
    monkeypatch.setenv("UNITUNE_LOCAL_PACKING", "false")
    spec = spec_of(data={"train": str(tmp_path / "train.jsonl")},
                   backend_options={"local": {"precision": "FP32", "gpus": "2"}})
    plan = plan_of(spec)
    assert plan.ready, plan.problems
    opts = plan.request["options"]
    assert opts["save_steps"] == 7 and opts["packing"] is False
    assert opts["precision"] == "fp32" and opts["gpus"] == 2
    assert "activation_checkpointing" not in opts  # unset: decided on the worker
    bad = plan_of(spec_of(data={"train": str(tmp_path / "train.jsonl")},
                          backend_options={"local": {"gpus": 0, "strategy": "zero"}}))
    assert not bad.ready and any("strategy" in p.message for p in bad.problems)


def test_create_lookup_and_refs_from_the_jobs_dir_alone(tmp_path, monkeypatch):
    """create writes request.json (what the worker reads) and finds an existing job instead of
    starting a second worker; lookup works from a fresh provider and the Location only."""
    from unitune.local import process
    from unitune.local.backend import LocalProvider
    from unitune.pipeline import Pipeline
    from unitune.provider import Ids

    started = []
    monkeypatch.setattr(process, "start", lambda files, options, resume: started.append(
        (files.dir, options, resume)) or 1)
    (tmp_path / "train.jsonl").write_text(CHAT_LINE)
    spec = spec_of(data={"train": str(tmp_path / "train.jsonl")})
    pipe = Pipeline(LocalProvider(jobs_dir=tmp_path / "jobs"))
    sub = pipe.prepare_submission(spec)
    ids = Ids(job_id="ut-x", key="key-x", spec_hash="h")
    ref = pipe.submit(sub, ids)
    job_dir = tmp_path / "jobs" / "ut-x"
    assert ref.extra["job_dir"] == str(job_dir.resolve())
    import json

    request = json.loads((job_dir / "request.json").read_text())
    assert request["job_dir"] == str(job_dir.resolve()) and request["key"] == "key-x"
    assert request["spec"]["data"]["train"] == str((tmp_path / "train.jsonl").resolve())
    assert pipe.submit(sub, ids).remote_id == "ut-x" and len(started) == 1
    fresh = Pipeline(LocalProvider())
    assert fresh.lookup("key-x", sub.location).remote_id == "ut-x"
    assert fresh.lookup("key-nope", sub.location) is None
    assert fresh.provider.read(ref).status.value in ("failed", "queued")  # no worker ran


def test_uncached_hub_model_offline_is_a_clear_error(monkeypatch, tmp_path):
    from unitune.local.models import resolve

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(UnituneError) as err:
        resolve("someorg/not-a-cached-model")
    assert "not in the local Hugging Face cache" in err.value.message
    assert "HF_HUB_OFFLINE" in err.value.message and "--local-dir" in err.value.hint


def test_cached_hub_model_resolves_offline(monkeypatch, tmp_path):
    from unitune.local.models import resolve

    cache = tmp_path / "hub"
    snap = cache / "models--someorg--cached" / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (cache / "models--someorg--cached" / "refs").mkdir()
    (cache / "models--someorg--cached" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    resolved = resolve("someorg/cached")
    assert resolved.source == "hf-cache" and Path(resolved.path) == snap


def test_local_paths_are_checked(tmp_path):
    from unitune.local.models import resolve

    with pytest.raises(UnituneError, match="does not exist"):
        resolve(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnituneError, match="no config.json"):
        resolve(str(tmp_path / "empty"))


def test_launcher_commands(tmp_path):
    import yaml

    from unitune.local.launch import command

    assert command(tmp_path, {})[1:3] == ["-m", "unitune.local.worker"]
    ddp = command(tmp_path, {"gpus": 2, "strategy": "ddp"}, resume=True)
    assert ddp[1:3] == ["-m", "torch.distributed.run"] and "--nproc_per_node" in ddp
    assert ddp[-1] == "--resume"
    fsdp = command(tmp_path, {"gpus": 4, "strategy": "fsdp"}, cuda=True)
    assert fsdp[1:3] == ["-m", "accelerate.commands.launch"]
    cfg = yaml.safe_load((tmp_path / "accelerate.yaml").read_text())
    assert cfg["distributed_type"] == "FSDP" and cfg["num_processes"] == 4
    assert cfg["fsdp_config"]["fsdp_version"] == 2
    command(tmp_path, {"gpus": 2, "strategy": "deepspeed"}, cuda=True)
    cfg = yaml.safe_load((tmp_path / "accelerate.yaml").read_text())
    assert cfg["distributed_type"] == "DEEPSPEED" and cfg["deepspeed_config"]["zero_stage"] == 3
    with pytest.raises(SpecError, match="has none"):
        command(tmp_path, {"gpus": 2, "strategy": "fsdp"}, cuda=False)
    with pytest.raises(SpecError):
        command(tmp_path, {"gpus": 0})


def test_bfd_rows_planning():
    from unitune.local.sft import _bfd_bins

    assert _bfd_bins([10, 10, 10, 10], 20) == 2
    assert _bfd_bins([15, 5, 12, 8, 20], 20) == 3
    assert _bfd_bins([20] * 5, 20) == 5


def test_dead_worker_and_cancel_before_start_are_reported(tmp_path):
    """get() on files alone: a non-terminal status with no live process is `failed` with the
    reason; with a cancel request it is `cancelled`; a status nobody documented is `unknown`."""
    import os

    from unitune.job import JobStatus, RemoteRef
    from unitune.local.backend import DIED, LocalProvider
    from unitune.local.jobfiles import JobFiles

    files = JobFiles(tmp_path)
    files.update_status(status="running", raw_status="training")
    files.pid_file.write_text("999999999")
    ref = RemoteRef(backend="local", remote_id="j", extra={"job_dir": str(tmp_path)})
    snap = LocalProvider().read(ref)
    assert snap.status is JobStatus.FAILED and snap.error.message == DIED
    files.cancel_flag.write_text("x")
    assert LocalProvider().read(ref).status is JobStatus.CANCELLED
    files.update_status(status="defragmenting")
    files.pid_file.write_text(str(os.getpid()))
    snap = LocalProvider().read(ref)
    assert snap.status is JobStatus.UNKNOWN and snap.raw_status == "defragmenting"


def test_data_problems_name_file_and_line(tmp_path):
    from unitune.errors import DataError
    from unitune.local.data import load_rows

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", '
                   '"content": "yo"}]}\n{"messages": [oops\n')
    with pytest.raises(DataError) as err:
        load_rows(bad, "sft")
    assert f"{bad}:2" in str(err.value)
    good = tmp_path / "chat.jsonl"
    good.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", '
                    '"content": "yo"}]}\n')
    with pytest.raises(DataError, match="preference pairs"):
        load_rows(good, "dpo")
    with pytest.raises(DataError, match="does not exist"):
        load_rows(tmp_path / "nope.jsonl", "sft")
