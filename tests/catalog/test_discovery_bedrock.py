"""`unitune models --refresh --backend bedrock`: ListFoundationModels(byCustomizationType=
FINE_TUNING) per region through the real boto3 client, against a loopback fake of the listing
(moto 5.2.6 does not implement ListFoundationModels), cached under UNITUNE_HOME with its date and
laid over the bundled catalog: what AWS reports as LEGACY or no longer tunable is refused in the
vendor's words."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from unitune.catalog import discovery, find_model, load_catalog
from unitune.cli.app import app
from unitune.cost.lifecycle import lifecycle_status
from unitune.testing.bedrock_models import FakeFoundationModels, default_models, summary


@pytest.fixture
def listing(monkeypatch):
    with FakeFoundationModels() as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", fake.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("UNITUNE_TODAY", "2026-12-04")
        yield fake


def test_refresh_asks_each_tuning_region_with_the_filter_and_caches_the_answer(listing):
    found = discovery.refresh("bedrock")
    assert sorted(r["region"] for r in listing.requests) == ["us-east-1", "us-west-2"]
    assert all("byCustomizationType=FINE_TUNING" in r["query"] for r in listing.requests)
    assert "amazon.titan-text-express-v1:0:8k" not in found.models  # no FINE_TUNING
    assert found.models["meta.llama3-1-8b-instruct-v1:0:128k"]["regions"] == ["us-west-2"]
    doc = json.loads(discovery.cache_path("bedrock").read_text())
    assert doc["fetched_at"] == found.fetched_at and doc["regions"] == ["us-east-1", "us-west-2"]
    assert discovery.cache_path("bedrock").parent.parent == discovery.cache_dir().parent


def test_the_filter_is_applied_client_side_too(monkeypatch):
    with FakeFoundationModels(honour_filters=False) as fake:  # a server that ignores it
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", fake.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        found = discovery.refresh("bedrock", regions=["us-east-1"])
    assert "amazon.titan-text-express-v1:0:8k" not in found.models
    assert "amazon.nova-micro-v1:0:128k" in found.models


def test_legacy_and_unlisted_models_are_refused_in_the_vendors_words(listing):
    discovery.refresh("bedrock")
    haiku = find_model("bedrock", "claude-3-haiku")
    level, msg = lifecycle_status(haiku)
    assert level == "error" and haiku.lifecycle.status == "legacy"
    assert "modelLifecycle.status LEGACY since 2026-03-10" in msg
    assert "endOfLifeTime 2026-09-10" in msg and "fetched" in msg
    assert "end of life" in msg.lower()  # the bundled account, kept as the other source
    titan = find_model("bedrock", "amazon.titan-text-express-v1:0:8k")
    assert titan.lifecycle.status == "not_tunable"
    assert "not returned by ListFoundationModels(byCustomizationType=FINE_TUNING)" in \
        titan.lifecycle.vendor_words
    nova = find_model("bedrock", "nova-micro")
    assert lifecycle_status(nova) == ("ok", "")  # listed, ACTIVE, no dates: unchanged
    # the bundled data itself is untouched (the offline default)
    bundled = [m for m in load_catalog().models if m.model == haiku.model][0]
    assert bundled.lifecycle.status is None


def test_a_region_not_listed_says_nothing_about_its_models(listing):
    discovery.refresh("bedrock", regions=["us-east-1"])
    llama = find_model("bedrock", "meta.llama3-1-8b-instruct-v1:0:128k")
    assert llama.lifecycle is None  # tunes in us-west-2, which was not asked


def test_a_model_that_becomes_legacy_later_is_refused_from_its_legacy_date(monkeypatch):
    models = default_models()
    models["us-east-1"][0] = summary("amazon.nova-micro-v1:0:128k", "Nova Micro", "Amazon",
                                     ["FINE_TUNING"], status="LEGACY", legacy="2027-02-01")
    with FakeFoundationModels(models) as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", fake.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        discovery.refresh("bedrock", regions=["us-east-1"])
    nova = find_model("bedrock", "nova-micro")
    for today, level in (("2027-01-31", "warning"), ("2027-02-01", "error"),
                         ("2027-02-02", "error")):
        monkeypatch.setenv("UNITUNE_TODAY", today)
        assert lifecycle_status(nova)[0] == level, today


def test_cli_refresh_then_plan_refuses(listing, tmp_path):
    res = CliRunner().invoke(app, ["models", "--refresh", "--backend", "bedrock", "--json"])
    assert res.exit_code == 0, res.output
    (r,) = json.loads(res.output)["refreshed"]
    assert r["ok"] and "anthropic.claude-3-haiku-20240307-v1:0:200k" in r["changed"]
    haiku = [m for m in json.loads(res.output)["models"] if m["model"].startswith("anthropic")][0]
    assert haiku["lifecycle"]["status"] == "legacy"


def test_a_broken_cache_is_ignored(listing):
    discovery.refresh("bedrock")
    discovery.cache_path("bedrock").write_text("{not json")
    assert find_model("bedrock", "claude-3-haiku").lifecycle.status is None
