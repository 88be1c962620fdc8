"""The REST fake itself: routes, encodings, filters, errors and scenario control over HTTP."""
from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from unitune.testing.vertex_server import VertexFakeServer

AUTH = {"Authorization": "Bearer t"}
PARENT = "projects/p/locations/us-central1"
BODY = {"baseModel": "gemini-2.5-flash", "labels": {"unitune-key": "k1"},
        "supervisedTuningSpec": {"trainingDatasetUri": "gs://b/train.jsonl",
                                 "hyperParameters": {"epochCount": "3", "adapterSize": 6}}}


@pytest.fixture
def srv():
    with VertexFakeServer() as server:
        yield server


def test_create_get_list_cancel_on_v1_and_v1beta1(srv):
    with httpx.Client(base_url=srv.url, headers=AUTH) as http:
        job = http.post(f"/v1beta1/{PARENT}/tuningJobs", json=BODY).json()
        assert job["state"] == "JOB_STATE_QUEUED"
        # GAPIC's enum number for TWO (6) is stored as the name
        assert job["supervisedTuningSpec"]["hyperParameters"]["adapterSize"] == "ADAPTER_SIZE_TWO"
        got = http.get(f"/v1/{job['name']}").json()
        assert got["state"] == "JOB_STATE_PENDING"  # one tick per GET
        as_int = http.get(f"/v1/{job['name']}", params={"$alt": "json;enum-encoding=int"}).json()
        assert as_int["state"] == 3  # RUNNING
        assert as_int["supervisedTuningSpec"]["hyperParameters"]["adapterSize"] == 6
        assert as_int["tuningDataStats"]["supervisedTuningDataStats"]["tuningStepCount"] == "6"
        http.post(f"/v1/{PARENT}/tuningJobs", json={**BODY, "labels": {"unitune-key": "k2"}})
        listed = http.get(f"/v1/{PARENT}/tuningJobs",
                          params={"filter": 'labels.unitune-key="k1"'}).json()
        assert [j["name"] for j in listed["tuningJobs"]] == [job["name"]]
        page = http.get(f"/v1/{PARENT}/tuningJobs", params={"pageSize": 1}).json()
        assert len(page["tuningJobs"]) == 1 and page["nextPageToken"] == "1"
        assert http.post(f"/v1/{job['name']}:cancel").json() == {}
        assert http.get(f"/v1/{job['name']}").json()["state"] == "JOB_STATE_CANCELLED"
        again = http.post(f"/v1/{job['name']}:cancel")
        assert again.status_code == 400
        assert again.json()["error"]["status"] == "FAILED_PRECONDITION"


@pytest.mark.parametrize("body,fragment", [
    ({**BODY, "baseModel": ""}, "baseModel is required"),
    ({**BODY, "supervisedTuningSpec": {"trainingDatasetUri": "/tmp/x.jsonl"}}, "gs://"),
    ({**BODY, "supervisedTuningSpec": {"trainingDatasetUri": "gs://b/x",
                                       "hyperParameters": {"epochCount": "zero"}}}, "epochCount"),
    ({**BODY, "labels": {"Bad Key": "v"}}, "labels"),
])
def test_invalid_creates_get_googles_error_body(srv, body, fragment):
    resp = httpx.post(f"{srv.url}/v1/{PARENT}/tuningJobs", json=body, headers=AUTH)
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["code"] == 400 and err["status"] == "INVALID_ARGUMENT" and fragment in err["message"]


@pytest.mark.parametrize("body,name,where", [
    ({**BODY, "tuningMode": "FULL"}, "tuningMode", "tuning_job"),
    ({**BODY, "supervisedTuningSpec": {"trainingDatasetUri": "gs://b/x",
                                       "hyperParameters": {"loraRank": 8}}},
     "loraRank", "tuning_job.supervised_tuning_spec.hyper_parameters"),
])
def test_fields_google_genai_does_not_know_are_refused(srv, body, name, where):
    """The schema is google-genai's own types, read when the request arrives."""
    from google.genai import types

    assert "lora_rank" not in types.SupervisedHyperParameters.model_fields
    resp = httpx.post(f"{srv.url}/v1/{PARENT}/tuningJobs", json=body, headers=AUTH)
    assert resp.status_code == 400
    message = resp.json()["error"]["message"]
    assert f'Unknown name "{name}"' in message and where in message
    assert not srv.jobs


def test_canonical_body_is_one_encoding_of_both_clients():
    from unitune.testing.vertex_server import canonical_body

    gapic = canonical_body(BODY)
    hp = gapic["supervisedTuningSpec"]["hyperParameters"]
    assert hp == {"epochCount": 3, "adapterSize": "ADAPTER_SIZE_TWO"}
    assert canonical_body(gapic) == gapic


def test_rate_limit_next_answers_429_with_retry_after(srv):
    srv.rate_limit_next(7)
    with httpx.Client(base_url=srv.url, headers=AUTH) as http:
        throttled = http.get(f"/v1/{PARENT}/tuningJobs")
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
        assert throttled.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
        assert http.get(f"/v1/{PARENT}/tuningJobs").status_code == 200


def test_auth_and_unknown_routes(srv):
    resp = httpx.get(f"{srv.url}/v1/{PARENT}/tuningJobs")
    assert resp.status_code == 401 and resp.json()["error"]["status"] == "UNAUTHENTICATED"
    assert httpx.get(f"{srv.url}/v2/{PARENT}/tuningJobs", headers=AUTH).status_code == 404
    missing = httpx.get(f"{srv.url}/v1/{PARENT}/tuningJobs/9", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"
    bad = httpx.get(f"{srv.url}/v1/{PARENT}/tuningJobs", params={"filter": "state=RUNNING"},
                    headers=AUTH)
    assert bad.status_code == 400


def test_scenarios_over_http(srv):
    with httpx.Client(base_url=srv.url, headers=AUTH) as http:
        http.post("/_fake/arrange", json={"scenario": "error:429:RESOURCE_EXHAUSTED:Quota exceeded"})
        refused = http.post(f"/v1/{PARENT}/tuningJobs", json=BODY)
        assert refused.status_code == 429 and "Quota" in refused.json()["error"]["message"]
        http.post("/_fake/arrange", json={"scenario": "state:PAUSED"})
        name = http.post(f"/v1/{PARENT}/tuningJobs", json=BODY).json()["name"]
        http.post("/_fake/advance", json={"name": name})
        assert srv.jobs[name].state == "JOB_STATE_PAUSED"
        assert len(http.get("/_fake/requests").json()["requests"]) == 2


@pytest.mark.slow
def test_runs_as_a_module(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "unitune.testing.vertex_server", "--port", "0",
                             "--no-auth"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = line.split(" on ", 1)[1].split()[0]
        resp = httpx.get(f"{url}/v1/{PARENT}/tuningJobs", timeout=5)
        assert resp.status_code == 200 and resp.json() == {"tuningJobs": []}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
