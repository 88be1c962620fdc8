"""Golden create requests (tests/openai/golden/*.json, pinned from the pre-rewrite backend): each
spec variant's POST /fine_tuning/jobs body as the fake received it on the wire, and the same
table read without a vendor (`plan`'s `request`, placeholders for what only submit knows).

Regenerate with UNITUNE_REGEN_GOLDEN=1 (then review the diff and say why)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from unitune.pipeline import Pipeline
from unitune.provider import Ids, is_placeholder
from unitune.spec import JobSpec
from unitune.testing.openai_server import FakeOpenAIServer

import openai_golden_cases as gc
from openai_helpers import pipe


def provider_for(flavour: str):
    from unitune.providers.openai import AzureOpenAIProvider, OpenAIProvider

    return (AzureOpenAIProvider if flavour == "azure" else OpenAIProvider)(log=lambda _m: None)


def load(name: str, tmp_path: Path) -> JobSpec:
    folder = gc.write_data(tmp_path / "data")
    return JobSpec.from_dict(json.loads(json.dumps(gc.CASES[name])), source_dir=str(folder))


@pytest.fixture
def fake_for(monkeypatch):
    servers = []

    def start(flavour: str) -> FakeOpenAIServer:
        srv = FakeOpenAIServer(azure=flavour == "azure").start()
        servers.append(srv)
        if flavour == "azure":
            monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", srv.endpoint)
            monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-test-key-0001")
        else:
            monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
            monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-0001")
        return srv

    yield start
    for srv in servers:
        srv.stop()


@pytest.mark.parametrize("name", sorted(gc.CASES))
def test_wire_request_matches_golden(name, tmp_path, fake_for):
    flavour = gc.flavour(name)
    srv = fake_for(flavour)
    spec = load(name, tmp_path)
    p = pipe(provider_for(flavour))
    p.submit(p.prepare_submission(spec), Ids(gc.JOB, gc.KEY, spec.spec_hash()))
    files = {fid: f.content for fid, f in srv.files.items()}
    got = gc.normalise(srv.last_request(), files, spec.spec_hash())
    if os.environ.get("UNITUNE_REGEN_GOLDEN"):
        gc.write_golden(name, got)
    assert got == gc.golden(name)


@pytest.mark.parametrize("name", sorted(gc.CASES))
def test_table_spec_in_request_out(name, tmp_path, monkeypatch):
    """The translation alone (no server, no key): plan's request is the golden body, with
    placeholders exactly where only submit knows the value."""
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-plan-only")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-plan-only-0000")
    spec = load(name, tmp_path)
    plan = Pipeline(provider_for(gc.flavour(name))).plan(spec)
    assert plan.request is not None and not [p for p in plan.problems if p.severity == "error"]
    want = gc.golden(name)["request"]
    got = json.loads(json.dumps(plan.request))
    meta = got["metadata"]
    assert meta.pop("unitune_spec_hash") == spec.spec_hash()
    assert meta["unitune_job_id"] == "<job-id>" and meta["unitune_key"] == "<idempotency-key>"
    assert [k for k, v in got.items() if is_placeholder(v)] == \
        [k for k in ("training_file", "validation_file") if k in got]
    want = {**want, "metadata": {k: v for k, v in want["metadata"].items()
                                 if k != "unitune_spec_hash"}}
    assert got == want
    # every plan row that maps a value names a request field that is really sent
    for row in plan.rows:
        if row.applied and row.vendor_param and row.vendor_value is not None:
            head = row.vendor_param.split(".")[0]
            assert head in got, (row.field, row.vendor_param)
