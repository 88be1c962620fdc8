"""The local job as a detached process: resume after SIGKILL reproduces an uninterrupted run,
SIGTERM cancels with a checkpoint, and a two-process torchrun (gloo) run trains on both ranks."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from unitune.job import JobStatus

from .conftest import make_spec, submit_local, wait_for

pytestmark = pytest.mark.slow


def terminal(provider, ref, timeout: float = 240.0):
    return wait_for(lambda: (s := provider.read(ref)).status.is_terminal and s, timeout, 0.2)


def steps_logged(job_dir: Path) -> int:
    from unitune.local.jobfiles import read_jsonl

    return max((r["step"] for r in read_jsonl(job_dir / "metrics.jsonl")), default=0)


def test_resume_after_sigkill_matches_uninterrupted_run(tiny_home, chat_file):
    from unitune.local.backend import DIED

    spec = make_spec(chat_file, steps=24, batch=4, lr=1e-2, options={"save_steps": 5})
    backend, ref_a = submit_local(spec)  # uninterrupted, in parallel with the interrupted one
    _, ref_b = submit_local(spec)
    job_b = Path(ref_b.extra["job_dir"])
    wait_for(lambda: steps_logged(job_b) >= 7, timeout=240, interval=0.005)
    pid = int((job_b / "pid").read_text())
    os.killpg(pid, signal.SIGKILL)
    killed_at = steps_logged(job_b)
    snap = wait_for(lambda: (s := backend.read(ref_b)).status is JobStatus.FAILED and s, 30)
    assert snap.error is not None and snap.error.message == DIED
    assert killed_at < 24, "the run ended before it could be killed"

    ckpt = max(int(p.name.split("-")[1]) for p in (job_b / "checkpoints").glob("checkpoint-*"))
    snap = backend.restart(ref_b)
    assert not snap.status.is_terminal
    assert terminal(backend, ref_b).status is JobStatus.SUCCEEDED
    assert terminal(backend, ref_a).status is JobStatus.SUCCEEDED

    a = {m.step: m for m in backend.metrics(ref_a)}
    b = {m.step: m for m in backend.metrics(ref_b)}
    assert sorted(a) == sorted(b) == list(range(1, 25))
    for step in range(ckpt + 1, 25):  # every step after the checkpoint, recomputed on resume
        assert b[step].train_loss == a[step].train_loss, (step, a[step].train_loss, b[step].train_loss)
        assert b[step].learning_rate == a[step].learning_rate
        assert b[step].tokens_seen == a[step].tokens_seen  # offset carried across the restart
    events = [e.message for e in backend.events(ref_b)]
    assert any(m.startswith(f"resuming from checkpoint-{ckpt}") for m in events), events


def test_sigterm_cancels_with_a_checkpoint(tiny_home, chat_file):
    spec = make_spec(chat_file, steps=100000, options={"save_steps": 100000})
    backend, ref = submit_local(spec)
    job = Path(ref.extra["job_dir"])
    wait_for(lambda: steps_logged(job) >= 2, timeout=240)
    backend.cancel(ref)
    snap = terminal(backend, ref, 120)
    assert snap.status is JobStatus.CANCELLED
    status = json.loads((job / "status.json").read_text())
    ckpt = Path(status["checkpoint"])
    assert ckpt.name == f"checkpoint-{status['step']}" and status["step"] >= 2
    assert (ckpt / "trainer_state.json").exists() and (ckpt / "adapter_model.safetensors").exists()
    assert (ckpt / "optimizer.pt").exists()


def test_two_process_torchrun_trains_on_both_ranks(tiny_home, chat_file):
    spec = make_spec(chat_file, steps=4, batch=4, options={"gpus": 2, "strategy": "ddp"})
    backend, ref = submit_local(spec)
    job = Path(ref.extra["job_dir"])
    launch = json.loads((job / "job.json").read_text())["launches"][0]["argv"]
    assert "torch.distributed.run" in launch and "--nproc_per_node" in launch
    snap = terminal(backend, ref)
    assert snap.status is JobStatus.SUCCEEDED, (snap.raw_status, snap.error, (job / "worker.log").read_text()[-2000:])
    ranks = [json.loads((job / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert {r["world_size"] for r in ranks} == {2}
    assert ranks[0]["pid"] != ranks[1]["pid"]
    assert all(r["steps"] == 4 and r["local_tokens"] > 0 for r in ranks)
    # DDP kept the replicas identical: both ranks hold the same trained adapter
    assert ranks[0]["trainable_digest"] == ranks[1]["trainable_digest"]
    status = json.loads((job / "status.json").read_text())
    assert status["effective_config"]["world_size"] == 2
    assert status["effective_config"]["effective_batch_size"] == 4


def test_client_trains_a_local_job_end_to_end(tiny_home, chat_file, tmp_path):
    """Through unitune's Client and registry, as `unitune train` does: durable record, worker,
    watch to the end, metrics and the model handle."""
    import yaml

    from unitune.client import Client, PollPolicy
    from unitune.registry import Registry

    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({
        "name": "client-e2e", "backend": "local", "base_model": "unitune/tiny-chat",
        "data": {"train": str(chat_file)},
        "hyperparameters": {"max_steps": 3, "batch_size": 4, "learning_rate": 1e-2}}))
    poll = PollPolicy(initial=0.2, maximum=0.5)
    client = Client(Registry(tiny_home / "registry.db"), poll=poll)
    job = client.train(str(spec_path))
    assert job.status is JobStatus.SUCCEEDED, (job.raw_status, job.error)
    assert job.model is not None and Path(job.model.model_id, "adapter_config.json").exists()
    rows = client.metrics(job.id)
    assert [r.step for r in rows] == [1, 2, 3] and all(r.train_loss for r in rows)
    assert Path(job.model.artifacts["job_dir"]) == tiny_home / "jobs" / job.id or \
        Path(job.model.artifacts["job_dir"]).name == job.id


def test_rerunning_train_continues_a_killed_job_from_its_checkpoint(tiny_home, chat_file, tmp_path):
    """Issue 4: after the worker is SIGKILLed, re-running `unitune train` on the same spec
    continues the same job from its last checkpoint (no second job, no restart from step 0)."""
    import yaml

    from unitune.client import Client, PollPolicy
    from unitune.registry import Registry

    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({
        "name": "rerun-after-kill", "backend": "local", "base_model": "unitune/tiny-chat",
        "data": {"train": str(chat_file)},
        "hyperparameters": {"max_steps": 12, "batch_size": 4, "learning_rate": 1e-2, "seed": 7},
        "backend_options": {"local": {"save_steps": 3}}}))
    client = Client(Registry(tiny_home / "registry.db"), poll=PollPolicy(initial=0.2, maximum=0.5))
    first = client.train(str(spec_path), detach=True)
    job_dir = tiny_home / "jobs" / first.id
    # a complete checkpoint (trainer_state.json is written last); a half-written one is ignored
    wait_for(lambda: any(job_dir.glob("checkpoints/checkpoint-*/trainer_state.json")),
             timeout=240, interval=0.05)
    os.killpg(int((job_dir / "pid").read_text()), signal.SIGKILL)
    wait_for(lambda: client.get(first.id).status is JobStatus.FAILED, timeout=30)

    again = client.train(str(spec_path))
    assert again.id == first.id and again.status is JobStatus.SUCCEEDED, (again.status, again.error)
    assert len(client.list()) == 1
    events = [e.message for e in client.events(first.id)]
    assert any(m.startswith("resuming from checkpoint-") for m in events), events
    assert [r.step for r in client.metrics(first.id)] == list(range(1, 13))
