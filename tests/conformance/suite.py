"""The conformance suite every backend runs (in the spirit of fsspec's abstract tests).

Use it by subclassing `BackendConformance` in a test module and providing a `harness` fixture
that returns an object with this shape:

    backend          the Backend under test (talking to its fake through the real vendor SDK)
    make_spec(tmp_path) -> JobSpec
                     a spec this backend accepts, with its data files written under tmp_path
    arrange(scenario) -> None
                     set the fake up for the NEXT submitted job: "success" (ends succeeded, with a
                     loss curve), "failure" (ends failed with `failure_message`), "unknown_status"
                     (the vendor reports a status string nobody documented), "slow" (stays
                     non-terminal until cancelled)
    advance(ref) -> None
                     move the fake forward one tick (no-op for fakes that advance by themselves)
    failure_message  the vendor's message the failure scenario carries
    unknown_raw      the raw status string the unknown_status scenario reports
    timeout_s        how long a job may take to reach a terminal state (default 60)
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from unitune.backends import Backend, Capabilities, SubmitContext
from unitune.job import JobStatus, Metrics, RemoteRef, Snapshot


def _ctx(tmp_path: Path, key: str | None = None) -> SubmitContext:
    key = key or f"ut-test-{uuid.uuid4().hex[:10]}"
    work = tmp_path / key
    work.mkdir(parents=True, exist_ok=True)
    return SubmitContext(job_id=key, idempotency_key=key, work_dir=work)


def watch(harness, ref: RemoteRef, *, until=lambda s: s.status.is_terminal) -> Snapshot:
    timeout_s = getattr(harness, "timeout_s", 60)
    deadline = time.monotonic() + timeout_s
    while True:
        harness.advance(ref)
        snap = harness.backend.get(ref)
        if until(snap):
            return snap
        if time.monotonic() > deadline:
            pytest.fail(f"job {ref.remote_id} still {snap.status} ({snap.raw_status}) after "
                        f"{timeout_s}s")
        time.sleep(0.05)


class BackendConformance:
    """Mix into a test class; the subclass supplies the `harness` fixture."""

    def test_is_a_backend_with_capabilities(self, harness):
        assert isinstance(harness.backend, Backend)
        caps = harness.backend.capabilities()
        assert isinstance(caps, Capabilities)
        assert caps.get("method:sft").supported
        for feature, support in caps.features.items():
            assert support.supported or support.reason, f"{feature}: unsupported without a reason"

    def test_submit_watch_metrics_model(self, harness, tmp_path):
        spec = harness.make_spec(tmp_path)
        harness.arrange("success")
        ref = harness.backend.submit(spec, _ctx(tmp_path))
        assert ref.remote_id
        snap = watch(harness, ref)
        assert snap.status is JobStatus.SUCCEEDED, (snap.status, snap.raw_status, snap.error)
        assert snap.raw_status
        assert snap.error is None
        assert snap.model is not None and snap.model.model_id
        rows = harness.backend.metrics(ref)
        assert rows and all(isinstance(r, Metrics) for r in rows)
        assert any(r.train_loss is not None for r in rows)
        steps = [r.step for r in rows]
        assert steps == sorted(steps)
        events = harness.backend.events(ref)
        assert isinstance(events, list)

    def test_cancel(self, harness, tmp_path):
        spec = harness.make_spec(tmp_path)
        harness.arrange("slow")
        ref = harness.backend.submit(spec, _ctx(tmp_path))
        harness.backend.cancel(ref)
        snap = watch(harness, ref)
        assert snap.status is JobStatus.CANCELLED, (snap.status, snap.raw_status)

    def test_unknown_raw_status_is_unknown(self, harness, tmp_path):
        spec = harness.make_spec(tmp_path)
        harness.arrange("unknown_status")
        ref = harness.backend.submit(spec, _ctx(tmp_path))
        snap = watch(harness, ref, until=lambda s: s.raw_status == harness.unknown_raw)
        assert snap.status is JobStatus.UNKNOWN
        assert not snap.status.is_terminal

    def test_failure_carries_vendor_message(self, harness, tmp_path):
        spec = harness.make_spec(tmp_path)
        harness.arrange("failure")
        ref = harness.backend.submit(spec, _ctx(tmp_path))
        snap = watch(harness, ref)
        assert snap.status is JobStatus.FAILED
        assert snap.error is not None
        assert harness.failure_message in snap.error.message

    def test_resubmit_same_key_returns_same_job(self, harness, tmp_path):
        spec = harness.make_spec(tmp_path)
        harness.arrange("slow")
        ctx = _ctx(tmp_path)
        first = harness.backend.submit(spec, ctx)
        second = harness.backend.submit(spec, ctx)
        assert second.remote_id == first.remote_id
        found = harness.backend.find(ctx.idempotency_key)
        assert found is not None and found.remote_id == first.remote_id
        assert harness.backend.find(f"ut-never-{uuid.uuid4().hex[:8]}") is None
        harness.backend.cancel(first)
