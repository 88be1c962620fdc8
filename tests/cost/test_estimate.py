"""The estimator: billable-token arithmetic, epochs resolution, truncation, hosting, local FLOPs."""
from __future__ import annotations

from datetime import date

import pytest

from unitune.catalog import find_model, gpus
from unitune.cost.estimate import (HOURS_PER_MONTH, MFU_RANGE, TokenStats, count_tokens, estimate,
                                   hosting_per_month, openai_cookbook_epochs, resolve_epochs,
                                   stats_for)
from unitune.spec import JobSpec

from .conftest import write_chats

TODAY = date(2026, 11, 28)


def make_spec(tmp_path, **over) -> JobSpec:
    raw = {"name": "t", "models": {"openai": "gpt-4.1-mini-2025-04-14",
                                   "bedrock": "amazon.nova-micro-v1:0:128k",
                                   "vertex": "gemini-2.5-flash", "azure": "gpt-4.1-mini",
                                   "local": "Qwen/Qwen2.5-0.5B-Instruct"},
           "data": {"train": "data/chats.jsonl"}}
    raw.update(over)
    return JobSpec.from_dict(raw, source_dir=str(tmp_path))


@pytest.mark.parametrize("n, epochs", [(1, 25), (3, 25), (10, 10), (20, 5), (33, 3), (34, 3),
                                       (8000, 3), (8334, 2), (12500, 2), (12501, 1), (25000, 1), (10**6, 1)])
def test_openai_cookbook_rule(n, epochs):
    assert openai_cookbook_epochs(n) == epochs


def test_resolve_epochs_per_vendor():
    assert resolve_epochs(4, find_model("openai", "gpt-4.1-mini"), 50) == (4, "spec")
    assert resolve_epochs("auto", find_model("openai", "gpt-4.1-mini"), 20)[0] == 5
    assert resolve_epochs("auto", find_model("bedrock", "nova-micro"), 20) == (2, "auto: catalog default")
    assert resolve_epochs("auto", find_model("bedrock", "meta.llama3-1-8b-instruct-v1:0"), 20)[0] == 5


def test_billable_tokens_are_epochs_times_clipped_sum(tmp_path):
    spec = make_spec(tmp_path, hyperparameters={"epochs": 2})
    stats = TokenStats(train=[100, 70000, 65536, 10] * 3, method="exact (test)", exact=True)
    est = estimate(spec, "openai", stats=stats, today=TODAY)
    per_epoch = 3 * (100 + 65536 + 65536 + 10)
    assert est.dataset_tokens == per_epoch
    assert est.billable_tokens == 2 * per_epoch
    assert est.truncated_examples == 3
    assert est.training_usd == pytest.approx(2 * per_epoch / 1e6 * 5.0)
    assert any("3 example(s) over 65,536 tokens: truncated" in n for n in est.notes)


def test_rejecting_vendor_says_rejected_and_min_examples(tmp_path):
    spec = make_spec(tmp_path, models={"bedrock": "meta.llama3-1-8b-instruct-v1:0:128k"})
    est = estimate(spec, "bedrock", stats=TokenStats(train=[20000, 50]), today=TODAY)
    assert est.truncated_examples == 1 and est.dataset_tokens == 16000 + 50
    assert any("REJECTED" in n for n in est.notes)
    assert any("needs at least 100" in n for n in est.notes)
    assert est.training_usd is None and any("not in the dated catalog" in n for n in est.notes)


def test_validation_tokens_only_where_billed(tmp_path, monkeypatch):
    spec = make_spec(tmp_path, hyperparameters={"epochs": 2})
    stats = TokenStats(train=[1000] * 20, validation=[500] * 4)
    info = find_model("openai", "gpt-4.1-mini")
    assert info.bills_validation is False
    est = estimate(spec, "openai", stats=stats, today=TODAY)
    assert est.billable_tokens == 40000 and est.validation_tokens == 2000
    # a catalog entry that bills validation (data, not code, decides)
    from unitune import catalog

    billed = info.model_copy(update={"bills_validation": True})
    real = catalog.find_model
    monkeypatch.setattr(catalog, "find_model", lambda b, m: billed if b == "openai" else real(b, m))
    assert estimate(spec, "openai", stats=stats, today=TODAY).billable_tokens == 44000


def test_hosting_per_month():
    az, why = hosting_per_month(find_model("azure", "gpt-4.1-mini"))
    assert az == pytest.approx(1.70 * HOURS_PER_MONTH)  # the 24 h Developer tier is not a month
    assert "deployment" in why
    assert hosting_per_month(find_model("bedrock", "nova-micro"))[0] == pytest.approx(1.95)
    usd, why = hosting_per_month(find_model("bedrock", "meta.llama3-1-8b-instruct-v1:0:128k"))
    assert usd is None and "provisioned throughput" in why
    assert hosting_per_month(find_model("bedrock", "amazon.titan-text-express-v1"))[0] == \
        pytest.approx(20.50 * HOURS_PER_MONTH + 1.95)
    assert hosting_per_month(find_model("vertex", "gemini-2.5-flash"))[0] == 0


def test_local_gpu_hours_from_flops(tmp_path):
    spec = make_spec(tmp_path, hyperparameters={"epochs": 1})
    stats = TokenStats(train=[1000] * 1000)  # 1M tokens
    est = estimate(spec, "local", stats=stats, today=TODAY)
    n = find_model("local", "Qwen/Qwen2.5-0.5B-Instruct").parameters
    h100 = next(g for g in gpus() if g.gpu.startswith("H100"))
    flops = 4 * n * 1_000_000
    opt = next(o for o in est.gpu_options if o.gpu == h100.gpu)
    assert opt.hours[0] == pytest.approx(flops / (h100.peak_bf16_tflops * 1e12 * MFU_RANGE[1]) / 3600)
    assert opt.hours[1] == pytest.approx(2 * opt.hours[0])  # 25 % vs 50 % MFU
    assert opt.usd[1] == pytest.approx(opt.hours[1] * h100.usd_per_hour)
    lo, hi = est.training_usd_range
    assert lo < hi and est.training_usd == pytest.approx((lo + hi) / 2)
    # full fine-tuning costs 6/4 of LoRA
    full = estimate(make_spec(tmp_path, hyperparameters={"epochs": 1}, adapter={"type": "full"}),
                    "local", stats=stats, today=TODAY)
    assert full.gpu_options[0].hours[0] == pytest.approx(1.5 * est.gpu_options[0].hours[0])


def test_local_memory_fit_picks_a_gpu_that_fits(tmp_path):
    spec = make_spec(tmp_path, models={"local": "meta-llama/Llama-3.1-8B-Instruct"},
                     adapter={"type": "full"}, hyperparameters={"epochs": 1})
    est = estimate(spec, "local", stats=TokenStats(train=[1000] * 10), today=TODAY)
    assert not any(o.fits for o in est.gpu_options)  # 8B full FT needs >80 GB on one GPU
    assert any("no GPU in the table" in n for n in est.notes)
    q = estimate(make_spec(tmp_path, models={"local": "meta-llama/Llama-3.1-8B-Instruct"},
                           adapter={"type": "qlora"}), "local",
                 stats=TokenStats(train=[1000] * 10), today=TODAY)
    assert any(o.fits and o.gpu == "RTX 4090" for o in q.gpu_options)


def test_unsupported_features_and_lifecycle_in_notes(tmp_path):
    spec = make_spec(tmp_path, method="dpo", models={"openai": "gpt-3.5-turbo-0125"},
                     adapter={"type": "qlora"}, hyperparameters={"epochs": 60})
    est = estimate(spec, "openai", stats=TokenStats(train=[100] * 20), today=TODAY)
    text = " | ".join(est.notes)
    assert "method dpo not supported" in text
    assert "adapter.type qlora not applied" in text
    assert "epochs=60 outside openai's range 1–50" in text
    # gpt-3.5-turbo-0125 shut down on 2026-10-23 (OpenAI's deprecations page): refused
    assert "REFUSED: new jobs stopped 2026-10-23" in text and est.lifecycle_level == "error"
    assert est.runnable is False
    late = estimate(spec, "openai", stats=TokenStats(train=[100] * 20), today=date(2027, 2, 1))
    assert late.lifecycle_level == "error" and late.notes[0].startswith("REFUSED")


def test_unknown_model_is_a_row_not_an_error(tmp_path):
    spec = make_spec(tmp_path, models={"openai": "davinci-003-nope"})
    est = estimate(spec, "openai", stats=TokenStats(train=[1]), today=TODAY)
    assert not est.in_catalog and est.training_usd is None
    assert "not in the openai catalog" in est.notes[0]


def test_count_tokens_reads_once_per_tokenizer_and_is_exact_for_openai(tmp_path):
    write_chats(tmp_path / "data" / "chats.jsonl", 30, long_every=10, long_chars=200)
    spec = make_spec(tmp_path)
    infos = [find_model("openai", "gpt-4.1-mini"), find_model("azure", "gpt-4.1-mini"),
             find_model("vertex", "gemini-2.5-flash")]
    from unitune.cost.estimate import _counter_key

    counted = count_tokens(spec, infos)
    # OpenAI and Azure share tokenizer and framing: one count serves both
    assert len(counted) == 2 and _counter_key(infos[0]) == _counter_key(infos[1])
    oa = counted[_counter_key(infos[0])]
    assert oa.exact and len(oa.train) == 30
    # exact count = o200k tokens of the contents (counted here independently) + the vendor's
    # per-message framing from unitune.tokens
    from unitune.data.dataset import load_examples
    from unitune.tokens import framing_for, load_encoding

    enc = load_encoding("o200k_base")
    f = framing_for(infos[0])
    first = next(iter(load_examples(tmp_path / "data" / "chats.jsonl")))
    expected = f.priming + sum(f.per_message + len(enc.encode_ordinary(m.content))
                               for m in first.messages)
    assert oa.train[0] == expected
    assert not counted[_counter_key(infos[2])].exact


def test_validation_fraction_splits_the_counts(tmp_path):
    write_chats(tmp_path / "data" / "chats.jsonl", 100)
    spec = make_spec(tmp_path, data={"train": "data/chats.jsonl", "validation": 0.1})
    s = stats_for(spec, find_model("openai", "gpt-4.1-mini"))
    assert (len(s.train), len(s.validation)) == (90, 10) and s.validation_is_fraction


def test_missing_data_is_a_clear_error(tmp_path):
    from unitune.errors import DataError

    spec = make_spec(tmp_path, data={"train": "nope.jsonl"})
    with pytest.raises(DataError, match="training data not found"):
        estimate(spec, "openai")


def test_bad_lines_are_skipped_and_counted(tmp_path):
    p = write_chats(tmp_path / "data" / "chats.jsonl", 20)
    with p.open("a", encoding="utf-8") as f:
        f.write("{not json\n")
    est = estimate(make_spec(tmp_path), "openai", today=TODAY)
    assert est.examples == 20
    assert any("1 line(s) with data errors" in n for n in est.notes)
