"""The conformance suite every provider runs (in the spirit of fsspec's abstract tests).

Use it by subclassing `ProviderConformance` in a test module and providing a `harness` fixture
that returns an object with this shape:

    provider         the Provider under test (talking to its fake through the real vendor SDK)
    make_spec(tmp_path) -> JobSpec
                     a spec this provider accepts, with its data files written under tmp_path
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
    last_request() -> dict | None
                     the last create request the fake received, in the form `plan`'s `request`
                     uses (OpenAI: the JSON body; Bedrock: the operation's parameters; Vertex: the
                     REST body; local: the job request the worker reads); None before any
    uploads() -> int how many files the fake has received so far
    missing_ref() -> RemoteRef
                     a reference to a job the vendor does not have (→ NotFound)
    rate_limit_next(retry_after: float) -> None | False
                     the vendor answers the next call with 429 + Retry-After; returns False where
                     the backend has no vendor to throttle it (the test is skipped, saying why)
    spawn            ("module:factory", kwargs, env): how a fresh process builds the same provider
                     (`factory(**kwargs)`) with the environment it needs to reach the fake
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from unitune.backends import Capabilities
from unitune.errors import DataError, NotFound, RateLimited, SpecError, UnituneError
from unitune.job import Event, JobStatus, Metrics, RemoteRef, Snapshot
from unitune.pipeline import Pipeline
from unitune.provider import Deployable, Ids, Location, Pausable, Provider, Restartable, is_placeholder
from unitune.retry import RetryPolicy
from unitune.spec import JobSpec


def pipeline(harness) -> Pipeline:
    return Pipeline(harness.provider, policy=RetryPolicy(max_retries=3, base=0.01, cap=0.05,
                                                         deadline=30))


def new_ids(spec: JobSpec) -> Ids:
    key = f"ut-test-{uuid.uuid4().hex[:10]}"
    return Ids(job_id=key, key=key, spec_hash=spec.spec_hash())


def submit(harness, spec: JobSpec, ids: Ids | None = None) -> tuple[RemoteRef, Ids, Location]:
    pipe = pipeline(harness)
    sub = pipe.prepare_submission(spec)
    ids = ids or new_ids(spec)
    return pipe.submit(sub, ids), ids, sub.location


def watch(harness, ref: RemoteRef, *, until=lambda s: s.status.is_terminal) -> Snapshot:
    timeout_s = getattr(harness, "timeout_s", 60)
    deadline = time.monotonic() + timeout_s
    while True:
        harness.advance(ref)
        snap = harness.provider.read(ref)
        if until(snap):
            return snap
        if time.monotonic() > deadline:
            pytest.fail(f"job {ref.remote_id} still {snap.status} ({snap.raw_status}) after "
                        f"{timeout_s}s")
        time.sleep(0.05)


def same_except_placeholders(planned: Any, sent: Any, path: str = "request") -> list[str]:
    """Differences between the planned request and the one the fake received; a planned value
    that is a placeholder ("<…>") matches anything, and `sent` may not carry a key `planned`
    lacks."""
    if is_placeholder(planned):
        return []
    if isinstance(planned, dict) and isinstance(sent, dict):
        diffs = [f"{path}.{k}: sent but not in plan" for k in sent if k not in planned]
        diffs += [f"{path}.{k}: in plan but not sent" for k in planned if k not in sent]
        for k in planned:
            if k in sent:
                diffs += same_except_placeholders(planned[k], sent[k], f"{path}.{k}")
        return diffs
    if isinstance(planned, list) and isinstance(sent, list) and len(planned) == len(sent):
        out: list[str] = []
        for i, (a, b) in enumerate(zip(planned, sent)):
            out += same_except_placeholders(a, b, f"{path}[{i}]")
        return out
    return [] if planned == sent else [f"{path}: planned {planned!r}, sent {sent!r}"]


class ProviderConformance:
    """Mix into a test class; the subclass supplies the `harness` fixture."""

    def test_is_a_provider_with_capabilities(self, harness):
        p = harness.provider
        assert isinstance(p, Provider)
        caps = p.capabilities()
        assert isinstance(caps, Capabilities)
        assert caps.get("method:sft").supported
        for feature, support in caps.features.items():
            assert support.supported or support.reason, f"{feature}: unsupported without a reason"
        # capability flags derive from the optional protocols, never disagree with them
        assert bool(caps.get("pause")) == isinstance(p, Pausable)
        assert bool(caps.get("restart")) == isinstance(p, Restartable)
        assert bool(caps.get("deploy")) == isinstance(p, Deployable)

    def test_submit_watch_metrics_events_model(self, harness, tmp_path):
        spec = harness.make_spec(tmp_path)
        harness.arrange("success")
        ref, _ids, _loc = submit(harness, spec)
        assert ref.remote_id
        snap = watch(harness, ref)
        assert snap.status is JobStatus.SUCCEEDED, (snap.status, snap.raw_status, snap.error)
        assert snap.raw_status
        assert snap.error is None
        assert snap.model is not None and snap.model.model_id
        rows = harness.provider.metrics(ref)
        assert rows and all(isinstance(r, Metrics) for r in rows)
        assert any(r.train_loss is not None for r in rows)
        steps = [r.step for r in rows]
        assert steps == sorted(steps)
        events = harness.provider.events(ref)
        assert events and all(isinstance(e, Event) and e.message for e in events)

    def test_plan_request_is_what_train_sends(self, harness, tmp_path):
        spec = harness.make_spec(tmp_path)
        plan = pipeline(harness).plan(spec)
        assert plan.ready, [p.message for p in plan.problems if p.severity == "error"]
        assert isinstance(plan.request, dict) and plan.request
        json.dumps(plan.request)  # serialisable as `plan --json` prints it
        harness.arrange("slow")
        ref, _ids, _loc = submit(harness, spec)
        sent = harness.last_request()
        assert sent is not None
        assert same_except_placeholders(plan.request, sent) == []
        harness.provider.cancel(ref)

    def test_cancel(self, harness, tmp_path):
        spec = harness.make_spec(tmp_path)
        harness.arrange("slow")
        ref, _ids, _loc = submit(harness, spec)
        harness.provider.cancel(ref)
        snap = watch(harness, ref)
        assert snap.status is JobStatus.CANCELLED, (snap.status, snap.raw_status)

    def test_unknown_raw_status_is_unknown(self, harness, tmp_path):
        spec = harness.make_spec(tmp_path)
        harness.arrange("unknown_status")
        ref, _ids, _loc = submit(harness, spec)
        snap = watch(harness, ref, until=lambda s: s.raw_status == harness.unknown_raw)
        assert snap.status is JobStatus.UNKNOWN
        assert not snap.status.is_terminal

    def test_failure_carries_vendor_message(self, harness, tmp_path):
        spec = harness.make_spec(tmp_path)
        harness.arrange("failure")
        ref, _ids, _loc = submit(harness, spec)
        snap = watch(harness, ref)
        assert snap.status is JobStatus.FAILED
        assert snap.error is not None
        assert harness.failure_message in snap.error.message

    def test_lookup_by_key(self, harness, tmp_path):
        spec = harness.make_spec(tmp_path)
        harness.arrange("slow")
        ref, ids, location = submit(harness, spec)
        pipe = pipeline(harness)
        found = pipe.lookup(ids.key, location)
        assert found is not None and found.remote_id == ref.remote_id
        assert pipe.lookup(f"ut-never-{uuid.uuid4().hex[:8]}", location) is None
        harness.provider.cancel(ref)

    def test_lookup_from_a_fresh_process(self, harness, tmp_path):
        spec = harness.make_spec(tmp_path)
        harness.arrange("slow")
        ref, ids, location = submit(harness, spec)
        target, kwargs, env = harness.spawn
        code = (
            "import json, sys, importlib\n"
            "from unitune.pipeline import Pipeline\n"
            "from unitune.provider import Location\n"
            "mod, _, fn = sys.argv[1].partition(':')\n"
            "provider = getattr(importlib.import_module(mod), fn)(**json.loads(sys.argv[2]))\n"
            "ref = Pipeline(provider).lookup(sys.argv[3], Location.model_validate_json(sys.argv[4]))\n"
            "print(json.dumps(ref.remote_id if ref else None))\n")
        out = subprocess.run([sys.executable, "-c", code, target, json.dumps(kwargs), ids.key,
                              location.model_dump_json()], capture_output=True, text=True,
                             env={**os.environ, **env}, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert json.loads(out.stdout.strip().splitlines()[-1]) == ref.remote_id
        harness.provider.cancel(ref)

    def test_refused_before_any_upload(self, harness, tmp_path):
        spec = harness.make_spec(tmp_path)
        Path(spec.data_path("train")).write_text("")  # an empty training file
        before = harness.uploads()
        plan = pipeline(harness).plan(spec)
        assert not plan.ready
        with pytest.raises((DataError, SpecError)):
            pipeline(harness).prepare_submission(spec)
        assert harness.uploads() == before

    def test_typo_in_options_is_refused(self, harness, tmp_path):
        spec = harness.make_spec(tmp_path)
        name = harness.provider.name
        opts = dict(spec.backend_options.get(name) or {})
        opts["definitely_not_an_option"] = "x"
        spec = spec.model_copy(update={"backend_options": {**spec.backend_options, name: opts}})
        plan = pipeline(harness).plan(spec)
        assert not plan.ready
        assert any("definitely_not_an_option" in p.message for p in plan.problems)
        with pytest.raises(SpecError, match="definitely_not_an_option"):
            pipeline(harness).prepare_submission(spec)

    def test_missing_job_is_not_found(self, harness):
        with pytest.raises(NotFound):
            harness.provider.read(harness.missing_ref())

    def test_rate_limit_carries_retry_after(self, harness, tmp_path):
        spec = harness.make_spec(tmp_path)
        harness.arrange("slow")
        ref, _ids, _loc = submit(harness, spec)
        if harness.rate_limit_next(7) is False:
            pytest.skip(f"{harness.provider.name} has no vendor that throttles")
        with pytest.raises(RateLimited) as info:
            harness.provider.read(ref)
        assert info.value.retryable and info.value.retry_after == pytest.approx(7)
        harness.rate_limit_next(7)
        snap = pipeline(harness).get(ref)  # the core's policy waits (capped) and tries again
        assert isinstance(snap, Snapshot)
        harness.provider.cancel(ref)


def first_error(exc: UnituneError) -> str:
    return exc.message.splitlines()[0]
