"""The SQLite registry: claims, lookups, history, caches, redaction, several processes at once."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from unitune.errors import JobNotFound
from unitune.job import Event, JobError, JobStatus, Metrics, ModelHandle, RemoteRef, Snapshot
from unitune.paths import unitune_home
from unitune.registry import (REDACTED, Registry, is_secret_key, new_idempotency_key, new_job_id,
                              redact, redact_text)


def _claim(reg: Registry, spec_hash: str = "s1", data_hash: str | None = "d1", **kw):
    return reg.claim(backend=kw.pop("backend", "fake"), spec={"name": "x"}, spec_hash=spec_hash,
                     data_hash=data_hash, name="x", **kw)


def test_lives_under_unitune_home_in_wal_mode():
    reg = Registry()
    assert reg.path == unitune_home() / "registry.sqlite3"
    mode = sqlite3.connect(reg.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_ids_and_keys_have_vendor_safe_shapes():
    import re

    job_id = new_job_id()
    assert re.fullmatch(r"ut-\d{8}-[0-9a-f]{6}", job_id)
    key = new_idempotency_key(job_id)
    # OpenAI metadata value, Bedrock clientRequestToken, Vertex label value
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", key) and len(key) <= 63


def test_claim_reuses_until_failed_or_cancelled():
    reg = Registry()
    first, created = _claim(reg)
    assert created and first.status is JobStatus.QUEUED and not first.submitted
    again, created = _claim(reg)
    assert not created and again.id == first.id
    other, created = _claim(reg, data_hash="d2")
    assert created and other.id != first.id
    forced, created = _claim(reg, new=True)
    assert created and forced.idempotency_key != first.idempotency_key
    # newest reusable one wins; after it fails, the older one is found, then a fresh one
    reg.mark_failed(forced.id, "boom")
    assert _claim(reg)[0].id == first.id
    reg.mark_failed(first.id, "boom", status=JobStatus.CANCELLED)
    fresh, created = _claim(reg)
    assert created and fresh.id not in (first.id, forced.id)


def test_lookup_by_prefix_remote_id_and_errors():
    reg = Registry()
    rec, _ = _claim(reg)
    reg.mark_submitted(rec.id, RemoteRef(backend="fake", remote_id="fakejob-xyz", extra={"r": 1}))
    assert reg.get_job(rec.id).ref.extra == {"r": 1}
    assert reg.get_job(rec.id[:-2]).id == rec.id
    assert reg.get_job("fakejob-xyz").id == rec.id
    with pytest.raises(JobNotFound, match="unitune list"):
        reg.get_job("ut-nope")
    _claim(reg, spec_hash="s2")
    with pytest.raises(JobNotFound, match="ambiguous"):
        reg.get_job("ut-")
    with pytest.raises(JobNotFound):
        reg.get_job("%")  # LIKE wildcards are literal


def test_snapshots_build_history_and_keep_fields():
    reg = Registry()
    rec, _ = _claim(reg)
    ref = RemoteRef(backend="fake", remote_id="r1")
    reg.mark_submitted(rec.id, ref)
    reg.record_snapshot(rec.id, Snapshot(ref=ref, status=JobStatus.RUNNING, raw_status="TRAINING"))
    reg.record_snapshot(rec.id, Snapshot(ref=ref, status=JobStatus.RUNNING, raw_status="TRAINING"))
    model = ModelHandle(backend="fake", model_id="ft:1")
    done = reg.record_snapshot(rec.id, Snapshot(ref=ref, status=JobStatus.SUCCEEDED,
                                                raw_status="COMPLETED", model=model,
                                                trained_tokens=10))
    assert done.model == model and done.trained_tokens == 10 and done.is_terminal
    raws = [h["raw_status"] for h in reg.history(rec.id)]
    assert raws == ["unitune:pending-submit", "unitune:submitted", "TRAINING", "COMPLETED"]
    job = done.to_job()
    assert job.status is JobStatus.SUCCEEDED and job.submitted and job.remote_id == "r1"


def test_unknown_status_string_in_the_db_reads_as_unknown():
    reg = Registry()
    rec, _ = _claim(reg)
    sqlite3.connect(reg.path).execute("UPDATE jobs SET status='weird' WHERE id=?",
                                      (rec.id,)).connection.commit()
    assert reg.get_job(rec.id).status is JobStatus.UNKNOWN


def test_metrics_events_and_upload_cache():
    reg = Registry()
    rec, _ = _claim(reg)
    reg.set_metrics(rec.id, [Metrics(step=2, train_loss=1.0), Metrics(step=1, train_loss=2.0)])
    reg.set_metrics(rec.id, [Metrics(step=2, train_loss=0.9)])
    assert [(m.step, m.train_loss) for m in reg.metrics(rec.id)] == [(1, 2.0), (2, 0.9)]
    reg.set_events(rec.id, [Event(message="a"), Event(message="b")])
    reg.set_events(rec.id, [Event(message="c")])
    assert [e.message for e in reg.events(rec.id)] == ["c"]
    assert reg.get("openai", "sha") is None
    reg.put("openai", "sha", "file-1")
    assert reg.get("openai", "sha") == "file-1" and reg.get("bedrock", "sha") is None
    reg.forget_upload("openai", "sha")
    assert reg.get("openai", "sha") is None


def test_secret_keys_are_redacted_in_the_stored_spec(monkeypatch):
    spec = {"backend_options": {"openai": {"api_key": "sk-live-123456", "organization": "org"},
                                "vertex": {"credentials": {"private_key": "PK"}}},
            "adapter": {"num_virtual_tokens": 20}, "metadata": {"hfToken": "hf_abcdef"}}
    red = redact(spec)
    assert red["backend_options"]["openai"] == {"api_key": REDACTED, "organization": "org"}
    assert red["backend_options"]["vertex"]["credentials"] == REDACTED
    assert red["adapter"]["num_virtual_tokens"] == 20 and red["metadata"]["hfToken"] == REDACTED
    reg = Registry()
    rec, _ = reg.claim(backend="fake", spec=spec, spec_hash="s", data_hash=None)
    raw = reg.path.read_bytes() + (reg.path.parent / "registry.sqlite3-wal").read_bytes()
    assert b"sk-live-123456" not in raw and b"hf_abcdef" not in raw
    assert reg.get_job(rec.id).spec["backend_options"]["openai"]["organization"] == "org"


def test_secret_values_from_the_environment_are_scrubbed_from_text(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-planted-abcdef")
    assert redact_text("auth failed for key sk-planted-abcdef") == f"auth failed for key {REDACTED}"
    reg = Registry()
    rec, _ = _claim(reg)
    ref = RemoteRef(backend="fake", remote_id="r")
    reg.record_snapshot(rec.id, Snapshot(ref=ref, status=JobStatus.FAILED, raw_status="x",
                                         error=JobError(message="bad key sk-planted-abcdef")))
    reg.set_events(rec.id, [Event(message="echo sk-planted-abcdef")])
    assert "sk-planted" not in reg.get_job(rec.id).error.message
    assert "sk-planted" not in reg.events(rec.id)[0].message


@pytest.mark.parametrize("name,secret", [("api_key", True), ("AWS_SECRET_ACCESS_KEY", True),
                                         ("max_tokens", False), ("bucket", False),
                                         ("kms_key_id", False), ("clientSecret", True)])
def test_secret_key_names(name, secret):
    assert is_secret_key(name) is secret


@pytest.mark.slow
def test_concurrent_claims_from_several_processes_make_one_job(tmp_path):
    """Four processes claim the same spec at once (BEGIN IMMEDIATE): one row, one key."""
    code = textwrap.dedent("""
        import sys, time
        from unitune.registry import Registry
        reg = Registry()
        while time.time() < float(sys.argv[1]):
            time.sleep(0.001)
        rec, created = reg.claim(backend="fake", spec={}, spec_hash="same", data_hash="same")
        print(rec.id, created)
    """)
    start = __import__("time").time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", code, str(start)], stdout=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outs = [p.communicate(timeout=30)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len({o[0] for o in outs}) == 1
    assert sorted(o[1] for o in outs) == ["False", "False", "False", "True"]
    assert len(Registry().list_jobs()) == 1


def test_submit_lease_respects_live_holders_only():
    import os
    import socket
    import threading

    reg = Registry()
    rec, _ = _claim(reg)
    assert reg.acquire_submit(rec.id) is None  # taken
    assert reg.acquire_submit(rec.id) is None  # re-entrant for the holder

    holder: list = []
    t = threading.Thread(target=lambda: holder.append(reg.acquire_submit(rec.id)))
    t.start()
    t.join()
    # another thread of this process is refused: the lease names this (main) thread
    assert holder[0] == f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"

    def set_owner(owner, at="2000-01-01T00:00:00+00:00"):
        sqlite3.connect(reg.path).execute("UPDATE jobs SET lease_owner=?, lease_at=? WHERE id=?",
                                          (owner, at, rec.id)).connection.commit()

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    set_owner(f"{socket.gethostname()}:{dead.pid}:1")
    assert reg.acquire_submit(rec.id) is None  # a dead holder's lease is void
    set_owner("some-other-host:1:1")  # stale lease from another host: expired
    assert reg.acquire_submit(rec.id) is None
    from datetime import datetime, timezone

    set_owner("some-other-host:1:1", datetime.now(timezone.utc).isoformat())
    assert reg.acquire_submit(rec.id) == "some-other-host:1:1"
    set_owner(f"{socket.gethostname()}:{os.getppid()}:1")  # a live process
    assert reg.acquire_submit(rec.id) is not None
    reg.mark_submitted(rec.id, RemoteRef(backend="fake", remote_id="r"))
    assert reg.acquire_submit(rec.id) == "submitted"
