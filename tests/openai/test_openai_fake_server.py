"""The fake server itself: timer ticks, admin endpoints, Azure's api-version rule, CSV rendering
against the backend's parser (property test)."""
from __future__ import annotations

import base64
import io
import json
import time
import urllib.error
import urllib.request

import openai
from hypothesis import given, settings
from hypothesis import strategies as st

from unitune.providers.openai import parse_result_csv
from unitune.testing.openai_server import CSV_VARIANTS, FakeOpenAIServer

from openai_helpers import chat_lines


def _post(url: str, payload: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def _upload(client) -> str:
    return client.files.create(file=("t.jsonl", io.BytesIO(chat_lines(10).encode())),
                               purpose="fine-tune").id


def test_timer_ticks_advance_jobs_without_polling():
    with FakeOpenAIServer(tick_seconds=0.01, steps=6) as srv:
        client = openai.OpenAI(api_key="x", base_url=srv.base_url)
        job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=_upload(client))
        deadline = time.monotonic() + 10
        while srv.jobs[job.id].phase != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert client.fine_tuning.jobs.retrieve(job.id).status == "succeeded"


def test_admin_endpoints_arrange_fault_and_advance():
    with FakeOpenAIServer() as srv:
        client = openai.OpenAI(api_key="x", base_url=srv.base_url, max_retries=0)
        fid = _upload(client)
        _post(f"{srv.endpoint}/_fake/arrange", {"scenario": "failure"})
        _post(f"{srv.endpoint}/_fake/fault", {"kind": "500", "count": 1})
        try:
            client.fine_tuning.jobs.create(model="m", training_file=fid)
            raise AssertionError("the injected 500 did not happen")
        except openai.InternalServerError:
            pass
        job = client.fine_tuning.jobs.create(model="m", training_file=fid)
        _post(f"{srv.endpoint}/_fake/advance", {"job_id": job.id, "ticks": 1})
        assert srv.jobs[job.id].phase == "failed"
        with urllib.request.urlopen(f"{srv.endpoint}/_fake/state", timeout=5) as resp:
            assert json.loads(resp.read()) == {"jobs": 1, "files": 1, "create_attempts": 2,
                                               "faults_left": 0}


def test_azure_mode_requires_api_version():
    with FakeOpenAIServer(azure=True) as srv:
        try:
            urllib.request.urlopen(f"{srv.endpoint}/openai/fine_tuning/jobs", timeout=5)
            raise AssertionError("expected 404 without api-version")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
        with urllib.request.urlopen(f"{srv.endpoint}/openai/fine_tuning/jobs?api-version=2025-04-01-preview",
                                    timeout=5) as resp:
            assert json.loads(resp.read())["data"] == []


row = st.fixed_dictionaries({
    "train_loss": st.floats(0.001, 10, allow_nan=False).map(lambda x: round(x, 4)),
    "train_mean_token_accuracy": st.floats(0, 1).map(lambda x: round(x, 4)),
    "valid_loss": st.none() | st.floats(0.001, 10).map(lambda x: round(x, 4)),
    "valid_mean_token_accuracy": st.none() | st.floats(0, 1).map(lambda x: round(x, 4)),
})


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(row, min_size=1, max_size=15), variant=st.sampled_from(sorted(CSV_VARIANTS)),
       b64=st.booleans())
def test_every_csv_variant_parses_back(rows, variant, b64):
    srv = FakeOpenAIServer(csv_variant=variant)  # rendering only; not started

    class _J:  # the fields _result_csv reads
        metrics = [{"step": i + 1, **{k: v for k, v in r.items() if v is not None}}
                   for i, r in enumerate(rows)]

    content = srv._result_csv(_J())
    if b64:
        content = base64.b64encode(content)
    parsed = parse_result_csv(content)
    assert [m.step for m in parsed] == list(range(1, len(rows) + 1))
    for m, r in zip(parsed, rows):
        assert m.train_loss == r["train_loss"]
        assert m.train_token_accuracy == r["train_mean_token_accuracy"]
        assert m.valid_loss == r["valid_loss"]
        assert m.valid_token_accuracy == r["valid_mean_token_accuracy"]
