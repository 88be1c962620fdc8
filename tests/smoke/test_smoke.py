"""`unitune train SPEC --smoke`: a deterministic small sample, 1 epoch, a few steps, marked in
the registry, priced first, and never re-attached to by the full run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from unitune.cli.app import app
from unitune.errors import DataError
from unitune.smoke import SMOKE_LABEL, is_smoke, smoke_spec
from unitune.spec import JobSpec
from unitune.testing.fake import FakeProvider

ROOT = Path(__file__).resolve().parents[2]


def chat(i: int) -> str:
    return json.dumps({"messages": [{"role": "user", "content": f"question {i}"},
                                    {"role": "assistant", "content": f"answer {i}"}]})


def write_spec(tmp_path: Path, n: int = 60, **extra) -> Path:
    (tmp_path / "train.jsonl").write_text("".join(chat(i) + "\n" for i in range(n)))
    raw = {"name": "demo", "backend": "fake", "base_model": "fake-base",
           "models": {"openai": "gpt-4.1-mini-2025-04-14"}, "data": {"train": "train.jsonl"},
           "hyperparameters": {"epochs": 3, "seed": 7},
           "backend_options": {"fake": {"steps": 3}}, **extra}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    monkeypatch.setenv("UNITUNE_POLL_INITIAL", "0.001")
    monkeypatch.setenv("UNITUNE_POLL_MAX", "0.005")
    FakeProvider.reset()
    yield
    FakeProvider.reset()


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args, code: int | None = 0):
        result = runner.invoke(app, [str(a) for a in args])
        if code is not None:
            assert result.exit_code == code, (result.exit_code, result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            result.exception
        return result

    return invoke


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_smoke_spec_is_a_small_marked_deterministic_copy(tmp_path):
    spec = JobSpec.load(write_spec(tmp_path, suffix="support"))
    plan = smoke_spec(spec, "fake", price=False)
    s = plan.spec
    assert s.name == "demo-smoke" and s.suffix == "support-smoke"
    assert s.metadata[SMOKE_LABEL] == "true" and is_smoke(s) and not is_smoke(spec)
    assert s.hyperparameters.epochs == 1 and s.hyperparameters.max_steps == 2  # 16 / batch 8
    sample = _lines(Path(s.data.train))
    assert len(sample) == 16 and plan.examples == 16 and plan.available == 60
    originals = set(_lines(tmp_path / "train.jsonl"))
    assert set(sample) <= originals  # lines copied unchanged
    # deterministic: the same sample again; another seed, another sample
    assert _lines(Path(smoke_spec(spec, "fake", price=False).spec.data.train)) == sample
    other = JobSpec.from_dict({**spec.model_dump(exclude={"source_dir"}),
                               "hyperparameters": {"epochs": 3, "seed": 8}},
                              source_dir=str(tmp_path))
    assert _lines(Path(smoke_spec(other, "fake", price=False).spec.data.train)) != sample
    # a different spec hash: the full run can never re-attach to it
    assert s.spec_hash() != spec.spec_hash()


def test_vendor_minimum_and_validation_fraction(tmp_path):
    spec = JobSpec.load(write_spec(tmp_path, data={"train": "train.jsonl", "validation": 0.2}))
    plan = smoke_spec(spec, "openai", examples=4)
    # OpenAI's catalog minimum is 10 training examples; the fraction is split off on top
    assert plan.minimum == 10 and plan.examples == 10
    assert len(_lines(Path(plan.spec.data.train))) == 12  # 12 - round(12 * 0.2) = 10
    from unitune.data.split import validation_count

    assert 12 - validation_count(12, 0.2) == 10  # the split the pipeline applies
    assert plan.spec.hyperparameters.max_steps is None  # OpenAI trains whole epochs
    assert plan.estimate is not None and plan.estimate.training_usd > 0
    assert plan.estimate.epochs == 1
    assert "$" in plan.summary() and "openai minimum is 10" in plan.summary()


def test_validation_file_is_sampled_too(tmp_path):
    spec_path = write_spec(tmp_path, data={"train": "train.jsonl", "validation": "val.jsonl"})
    (tmp_path / "val.jsonl").write_text("".join(chat(100 + i) + "\n" for i in range(30)))
    plan = smoke_spec(JobSpec.load(spec_path), "fake", price=False)
    assert plan.validation_examples == 4
    assert len(_lines(Path(plan.spec.data.validation))) == 4


def test_bad_data_is_refused_before_anything(tmp_path):
    spec_path = write_spec(tmp_path)
    with open(tmp_path / "train.jsonl", "a") as fh:
        fh.write('{"messages": [{"role": "user"}\n')
    with pytest.raises(DataError, match="error"):
        smoke_spec(JobSpec.load(spec_path), "fake")


def test_local_smoke_without_a_local_model_uses_the_tiny_model(tmp_path):
    spec = JobSpec.load(write_spec(tmp_path, adapter={"type": "qlora"},
                                   hyperparameters={"max_seq_length": 4096},
                                   backend_options={"local": {"attn_implementation":
                                                              "flash_attention_2", "gpus": 4}}))
    plan = smoke_spec(spec, None, price=False)
    s = plan.spec
    assert plan.backend == "local" and s.models["local"] == "unitune/tiny-chat"
    assert s.adapter.type == "lora" and s.hyperparameters.max_seq_length == 512
    assert s.backend_options["local"] == {}
    assert any("tiny" in n for n in plan.notes)


def test_cli_smoke_then_full_run_are_two_jobs(run, tmp_path):
    spec = write_spec(tmp_path)
    res = run("train", spec, "--smoke", "--backend", "fake", "--json")
    smoke_job = json.loads(res.stdout)
    assert smoke_job["status"] == "succeeded" and smoke_job["name"] == "demo-smoke"
    assert "smoke run 'demo-smoke' on fake:fake-base: 16 example(s)" in res.stderr
    remote = FakeProvider.remote_jobs()
    assert len(remote) == 1
    full = json.loads(run("train", spec, "--json").stdout)
    assert full["id"] != smoke_job["id"] and full["name"] == "demo"
    assert len(FakeProvider.remote_jobs()) == 2
    # the smoke run again re-attaches to its own job; the full run again to its own
    again = json.loads(run("train", spec, "--smoke", "--backend", "fake", "--json").stdout)
    assert again["id"] == smoke_job["id"]
    assert json.loads(run("train", spec, "--json").stdout)["id"] == full["id"]
    assert len(FakeProvider.remote_jobs()) == 2
    jobs = {j["id"]: j for j in json.loads(run("list", "--json").stdout)}
    assert jobs[smoke_job["id"]]["name"] == "demo-smoke"


def test_cli_smoke_on_openai_fake_server(run, tmp_path, monkeypatch):
    from unitune.testing.openai_server import FakeOpenAIServer

    spec = write_spec(tmp_path, backend="openai", suffix="demo",
                      backend_options={"openai": {"poll_interval": 0.01}})
    with FakeOpenAIServer() as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        res = run("train", spec, "--smoke", "--backend", "openai", "--json")
        body = srv.last_request()
        job = json.loads(res.stdout)
    assert job["status"] == "succeeded"
    assert "estimated $" in res.stderr  # priced before anything was sent
    assert body["metadata"][SMOKE_LABEL] == "true"
    assert body["suffix"] == "demo-smoke"
    assert body["method"]["supervised"]["hyperparameters"]["n_epochs"] == 1


@pytest.mark.slow
def test_cli_local_smoke_on_the_tiny_model(run, tiny_home):
    """The quickstart spec's smoke run trains the embedded model for real, end to end."""
    import time

    t0 = time.monotonic()
    res = run("train", ROOT / "examples/quickstart.yaml", "--smoke", "--json")
    elapsed = time.monotonic() - t0
    job = json.loads(res.stdout)
    assert job["status"] == "succeeded" and job["name"] == "support-zh-smoke"
    assert "no vendor charge" in res.stderr
    print(f"local smoke run: {elapsed:.1f} s")
