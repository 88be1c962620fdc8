"""The catalog data files: they validate, every fact is dated and sourced, and the facts the
reference states are what the estimator and backends will read."""
from __future__ import annotations

from datetime import date

import pytest
import yaml

from unitune.catalog import DATA_DIR, find_model, gpus, load_catalog, models
from unitune.spec import JobSpec

from .conftest import QUICKSTART

BACKENDS = ("openai", "azure", "bedrock", "vertex", "local")


def test_every_file_validates_and_every_backend_has_models():
    cat = load_catalog()
    files = {p.stem for p in DATA_DIR.glob("*.yaml")}
    assert set(BACKENDS) <= files
    for backend in BACKENDS:
        assert models(backend), backend
        # each file holds only its own backend's models
        doc = yaml.safe_load((DATA_DIR / f"{backend}.yaml").read_text(encoding="utf-8"))
        assert {m["backend"] for m in doc["models"]} == {backend}
    assert len(cat.models) >= 35


def test_ids_and_aliases_are_unique_per_backend():
    for backend in BACKENDS:
        seen: dict[str, str] = {}
        for m in models(backend):
            for name in (m.model, *m.aliases):
                assert name not in seen, f"{backend}: {name} used by {seen[name]} and {m.model}"
                seen[name] = m.model


def test_every_price_and_date_is_sourced_and_dated():
    for m in models():
        facts = [m.training, m.inference, m.lifecycle, m.duration, *m.hosting]
        for fact in facts:
            if fact is None:
                continue
            assert fact.source.strip(), (m.model, fact)
            assert date(2024, 1, 1) <= fact.as_of <= date(2026, 12, 31), (m.model, fact)
    for g in gpus():
        assert g.source and g.as_of and g.usd_per_hour > 0 and g.peak_bf16_tflops > 0


def test_reference_marked_unverified_is_unverified_in_data():
    # shared/reference: Bedrock and Vertex prices are unverified; nano's date is unverified
    for m in models("bedrock") + models("vertex") + models("azure"):
        if m.training:
            assert m.training.verified is False, m.model
    assert find_model("openai", "gpt-4.1-nano").lifecycle.verified is False
    assert all(not g.verified for g in gpus())


def test_openai_facts():
    mini = find_model("openai", "gpt-4.1-mini-2025-04-14")
    assert mini.training.unit == "per_1m_tokens" and mini.training.usd == 5.0
    assert mini.tokenizer == "o200k_base" and mini.epochs_auto == "openai-cookbook"
    assert mini.limits.tokens_per_example == 65536 and mini.limits.truncates
    assert mini.limits.min_examples == 10
    assert "dpo" in mini.methods
    assert mini.lifecycle.new_jobs_until == date(2027, 1, 5)  # new jobs stop ON 2027-01-06
    assert mini.lifecycle.retires == date(2027, 1, 14)
    legacy = find_model("openai", "gpt-3.5-turbo-0125")
    assert legacy.tokenizer == "cl100k_base" and "dpo" not in legacy.methods
    assert legacy.limits.tokens_per_example == 16385
    for name in ("gpt-4.1", "gpt-4.1-nano", "gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18"):
        assert find_model("openai", name) is not None, name
    assert find_model("openai", "gpt-4.1").model == "gpt-4.1-2025-04-14"


def test_bedrock_hyperparameter_ranges_match_reference():
    nova = find_model("bedrock", "amazon.nova-micro-v1:0:128k")
    ep = nova.hyperparameters["epochs"]
    assert (ep.vendor_key, ep.min, ep.max, ep.default, ep.type) == ("epochCount", 1, 5, 2, "int")
    assert "batch_size" not in nova.hyperparameters  # Nova takes no batchSize
    assert nova.rules.format == "bedrock-converse" and "Bot:" in nova.rules.reserved_strings
    assert (nova.limits.min_examples, nova.limits.max_examples) == (8, 20000)
    llama31 = find_model("bedrock", "meta.llama3-1-8b-instruct-v1:0:128k")
    assert llama31.rules.format == "bedrock-prompt-completion"
    assert llama31.hyperparameters["batch_size"].max == 1
    assert find_model("bedrock", "meta.llama3-2-90b-instruct-v1:0:128k").limits.tokens_per_example == 10000
    haiku = find_model("bedrock", "anthropic.claude-3-haiku-20240307-v1:0:200k")
    assert haiku.rules.format == "bedrock-claude" and haiku.rules.plain_string_content
    lrm = haiku.hyperparameters["learning_rate_multiplier"]
    assert (lrm.vendor_key, lrm.min, lrm.max, lrm.default) == ("learningRateMultiplier", 0.1, 2, 1)
    assert haiku.limits.max_validation_examples == 1000
    # on-demand deployment only for the families that support it
    on_demand = {m.model for m in models("bedrock")
                 if any(h.kind == "deployment" for h in m.hosting)}
    assert on_demand == {"amazon.nova-micro-v1:0:128k", "amazon.nova-lite-v1:0:300k",
                         "amazon.nova-pro-v1:0:300k", "amazon.nova-2-lite-v1:0:256k",
                         "meta.llama3-3-70b-instruct-v1:0:128k"}
    assert all(any(h.kind == "storage" and h.usd == 1.95 for h in m.hosting)
               for m in models("bedrock"))


def test_hyperparameter_defaults_inside_their_ranges():
    for m in models():
        for key, r in m.hyperparameters.items():
            if r.min is not None and r.max is not None:
                assert r.min <= r.max, (m.model, key)
            if isinstance(r.default, (int, float)) and not isinstance(r.default, bool):
                if r.min is not None:
                    assert r.default >= r.min, (m.model, key)
                if r.max is not None:
                    assert r.default <= r.max, (m.model, key)


def test_vertex_adapter_sizes_and_limits():
    assert find_model("vertex", "gemini-2.5-pro").adapter_sizes == [1, 2, 4, 8]
    assert max(find_model("vertex", "gemini-2.5-flash").adapter_sizes) == 16
    for m in models("vertex"):
        assert m.adapter_sizes and m.limits.tokens_per_example == 131072
        assert m.limits.max_validation_examples == 5000


def test_local_models_have_parameter_counts_and_quickstart_models_resolve():
    for m in models("local"):
        assert m.parameters and m.parameters > 0, m.model
    spec = JobSpec.load(QUICKSTART)
    for backend in BACKENDS:
        assert find_model(backend, spec.model_for(backend)) is not None, backend
    # the default comparison set covers every backend
    assert {m.backend for m in models() if m.default} == set(BACKENDS)


def test_quickstart_has_no_account_specific_values():
    text = QUICKSTART.read_text(encoding="utf-8")
    spec = JobSpec.load(QUICKSTART)
    assert not spec.backend_options
    for needle in ("arn:aws", "s3://", "gs://", "bucket:", "role_arn", "project:"):
        assert needle not in text.split("\nname:")[1], needle  # comments above may name env vars
    assert spec.data.train == "data/support_zh.jsonl"
