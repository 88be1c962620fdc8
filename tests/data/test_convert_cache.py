"""unitune.data.prepared: a conversion (and a validation split) is done once per content and
served from `UNITUNE_HOME/cache/converted` afterwards, with exactly the same output, counts,
warnings and errors; a changed source misses, and a damaged entry is rebuilt, never served."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from unitune.data import convert as convert_mod
from unitune.data import split as split_mod
from unitune.data.prepared import cache_root, convert_cached, split_cached
from unitune.errors import DataError


def _chat(i: int, system: bool = True) -> dict:
    msgs = [{"role": "user", "content": f"what is {i} + {i}?"},
            {"role": "assistant", "content": str(2 * i)}]
    if system:
        msgs.insert(0, {"role": "system", "content": "Answer with a number."})
    return {"messages": msgs}


def write_source(path: Path, n: int = 8) -> Path:
    """SFT lines with a system prompt (a lossy_system warning into prompt/completion), one broken
    line and one preference example (refused by an SFT target): warnings *and* errors."""
    lines = [json.dumps(_chat(i)) for i in range(n)]
    lines.insert(3, '{"messages": [')  # not JSON
    lines.append(json.dumps({"prompt": "Say hi", "chosen": "Hi!", "rejected": "no"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def spy(monkeypatch):
    """Counts calls to the module-level convert_file / split_file (wrapping the real ones)."""
    calls = {"convert": 0, "split": 0}
    real_convert, real_split = convert_mod.convert_file, split_mod.split_file

    def convert_file(*a, **kw):
        calls["convert"] += 1
        return real_convert(*a, **kw)

    def split_file(*a, **kw):
        calls["split"] += 1
        return real_split(*a, **kw)

    monkeypatch.setattr(convert_mod, "convert_file", convert_file)
    monkeypatch.setattr(split_mod, "split_file", split_file)
    return calls


def _shown(result) -> dict:
    d = result.to_dict()
    d.pop("output")
    return d


def test_second_call_is_a_hit_with_the_same_output_and_warnings(tmp_path, spy):
    src = write_source(tmp_path / "train.jsonl")
    direct = convert_mod.convert_file(src, "bedrock-prompt-completion", tmp_path / "direct.jsonl")
    spy["convert"] = 0
    first = convert_cached(src, "bedrock-prompt-completion", tmp_path / "a.jsonl")
    second = convert_cached(src, "bedrock-prompt-completion", tmp_path / "b.jsonl")
    assert spy["convert"] == 1
    # what a user sees is what the plain conversion gives: counts, warnings, errors, lines
    assert _shown(first) == _shown(second) == _shown(direct)
    assert first.warnings and first.errors
    assert {p.line for p in second.errors} == {4, 10}
    assert second.output == str(tmp_path / "b.jsonl")
    direct_bytes = (tmp_path / "direct.jsonl").read_bytes()
    assert (tmp_path / "a.jsonl").read_bytes() == direct_bytes
    assert (tmp_path / "b.jsonl").read_bytes() == direct_bytes


def test_same_content_elsewhere_hits_and_names_the_new_file(tmp_path, spy):
    src = write_source(tmp_path / "one.jsonl")
    convert_cached(src, "bedrock-prompt-completion", tmp_path / "out1.jsonl")
    other = tmp_path / "copy" / "two.jsonl"
    other.parent.mkdir()
    other.write_bytes(src.read_bytes())
    again = convert_cached(other, "bedrock-prompt-completion", tmp_path / "out2.jsonl")
    assert spy["convert"] == 1
    assert again.source == str(other)
    assert {p.file for p in again.warnings + again.errors} == {str(other)}


def test_changed_source_target_or_cap_misses(tmp_path, spy):
    src = write_source(tmp_path / "train.jsonl")
    convert_cached(src, "vertex", tmp_path / "o.jsonl")
    convert_cached(src, "vertex", tmp_path / "o.jsonl", max_warnings=1)  # another cap
    convert_cached(src, "openai", tmp_path / "o.jsonl")  # another target
    assert spy["convert"] == 3
    write_source(src, n=9)  # new content, same path
    changed = convert_cached(src, "vertex", tmp_path / "o.jsonl")
    assert spy["convert"] == 4
    assert changed.written == 9


def test_damaged_entries_are_rebuilt_not_served(tmp_path, spy):
    src = write_source(tmp_path / "train.jsonl")
    good = convert_cached(src, "vertex", tmp_path / "good.jsonl")
    expected = (tmp_path / "good.jsonl").read_bytes()
    root = cache_root()
    (data,) = root.glob("*.jsonl")
    meta = data.with_suffix(".json")

    data.write_bytes(expected[: len(expected) // 2])  # truncated (a partial file)
    assert _shown(convert_cached(src, "vertex", tmp_path / "o1.jsonl")) == _shown(good)
    assert (tmp_path / "o1.jsonl").read_bytes() == expected and spy["convert"] == 2

    data.unlink()  # a data file replaced by something of the same size but other bytes
    data.write_bytes(expected.replace(b"model", b"modem"))
    assert (convert_cached(src, "vertex", tmp_path / "o2.jsonl") and
            (tmp_path / "o2.jsonl").read_bytes() == expected and spy["convert"] == 3)

    meta.write_text("{not json")  # a broken sidecar
    assert _shown(convert_cached(src, "vertex", tmp_path / "o3.jsonl")) == _shown(good)
    assert spy["convert"] == 4

    meta.unlink()  # data without its sidecar: the writer died in between
    convert_cached(src, "vertex", tmp_path / "o4.jsonl")
    assert spy["convert"] == 5
    convert_cached(src, "vertex", tmp_path / "o5.jsonl")
    assert spy["convert"] == 5
    assert not list(root.glob(".*.tmp")), "no temporary file is left behind"


def test_no_destination_returns_the_cached_file(tmp_path, spy):
    src = write_source(tmp_path / "train.jsonl")
    r = convert_cached(src, "openai")
    assert Path(r.output).parent == cache_root() and Path(r.output).is_file()
    assert convert_cached(src, "openai").output == r.output and spy["convert"] == 1


def test_refusals_are_those_of_convert_file(tmp_path):
    src = write_source(tmp_path / "train.jsonl")
    with pytest.raises(DataError, match="refusing to overwrite the input"):
        convert_cached(src, "openai", src)
    with pytest.raises(DataError):
        convert_cached(tmp_path / "missing.jsonl", "openai", tmp_path / "o.jsonl")


def test_a_refused_file_is_not_cached(tmp_path, spy):
    src = tmp_path / "sft.jsonl"
    src.write_text(json.dumps(_chat(1)) + "\n")
    for _ in range(2):  # SFT data into a preference target: every line refused
        r = convert_cached(src, "openai-dpo", tmp_path / "o.jsonl")
        assert r.written == 0 and r.errors and not (tmp_path / "o.jsonl").exists()
    assert spy["convert"] == 2


def test_split_is_cached_by_content_fraction_and_seed(tmp_path, spy):
    src = tmp_path / "train.jsonl"
    src.write_text("".join(json.dumps(_chat(i)) + "\n" for i in range(20)))
    ref = split_mod.split_file(src, 0.25, 7, tmp_path / "rt.jsonl", tmp_path / "rv.jsonl")
    spy["split"] = 0
    a = split_cached(src, 0.25, 7, tmp_path / "a" / "t.jsonl", tmp_path / "a" / "v.jsonl")
    b = split_cached(src, 0.25, 7, tmp_path / "b" / "t.jsonl", tmp_path / "b" / "v.jsonl")
    assert spy["split"] == 1
    assert (a.train, a.validation) == (b.train, b.validation) == (ref.train, ref.validation)
    for which in ("t", "v"):
        assert (tmp_path / "b" / f"{which}.jsonl").read_bytes() == \
            (tmp_path / f"r{which}.jsonl").read_bytes()
    split_cached(src, 0.25, 8, tmp_path / "c" / "t.jsonl", tmp_path / "c" / "v.jsonl")
    split_cached(src, 0.2, 7, tmp_path / "c" / "t.jsonl", tmp_path / "c" / "v.jsonl")
    assert spy["split"] == 3
    for part in cache_root().glob("*.validation.jsonl"):
        part.write_bytes(b"")  # damaged: rebuilt
    split_cached(src, 0.25, 7, tmp_path / "d" / "t.jsonl", tmp_path / "d" / "v.jsonl")
    assert spy["split"] == 4
