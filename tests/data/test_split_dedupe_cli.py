"""split, dedupe and the convert/split/dedupe commands."""
import gzip
import json

import pytest
from typer.testing import CliRunner

from unitune.cli.app import app
from unitune.data.split import dedupe_file, split_file, validation_count
from unitune.errors import DataError

runner = CliRunner()


def chat(q, a):
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def lines(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh]


def test_split_is_deterministic_exact_and_complete(tmp_path):
    src = write(tmp_path / "d.jsonl", [chat(f"q{i}", f"a{i}") for i in range(200)])
    r1 = split_file(src, 0.1, 0, tmp_path / "t1.jsonl", tmp_path / "v1.jsonl")
    r2 = split_file(src, 0.1, 0, tmp_path / "t2.jsonl", tmp_path / "v2.jsonl")
    r3 = split_file(src, 0.1, 1, tmp_path / "t3.jsonl", tmp_path / "v3.jsonl")
    assert (r1.train, r1.validation) == (180, 20)
    assert lines(tmp_path / "v1.jsonl") == lines(tmp_path / "v2.jsonl")
    assert lines(tmp_path / "v1.jsonl") != lines(tmp_path / "v3.jsonl")
    everything = lines(tmp_path / "t1.jsonl") + lines(tmp_path / "v1.jsonl")
    assert sorted(everything) == sorted(lines(src))
    # original order is kept inside each part
    order = {line: i for i, line in enumerate(lines(src))}
    train = [order[x] for x in lines(tmp_path / "t1.jsonl")]
    assert train == sorted(train)
    assert r3.validation == 20


def test_split_counts_and_errors(tmp_path):
    assert validation_count(200, 0.1) == 20
    assert validation_count(5, 0.01) == 1  # never an empty validation set by rounding
    assert validation_count(200, 30) == 30  # a count
    with pytest.raises(DataError):
        validation_count(10, 10)
    with pytest.raises(DataError):
        validation_count(10, 2.5)
    src = write(tmp_path / "d.jsonl", [chat("q", "a")])
    with pytest.raises(DataError, match="same file"):
        split_file(src, 0.5, 0, tmp_path / "x.jsonl", tmp_path / "x.jsonl")
    with pytest.raises(DataError, match="overwrite"):
        split_file(src, 0.5, 0, src, tmp_path / "v.jsonl")


def test_split_gz_bom_crlf(tmp_path):
    src = tmp_path / "d.jsonl.gz"
    body = b"\xef\xbb\xbf" + b"".join(json.dumps(chat(f"q{i}", "a")).encode() + b"\r\n\r\n"
                                      for i in range(10))
    src.write_bytes(gzip.compress(body))
    r = split_file(src, 0.2, 0, tmp_path / "t.jsonl.gz", tmp_path / "v.jsonl")
    assert (r.train, r.validation) == (8, 2)
    assert all(json.loads(x) for x in lines(tmp_path / "t.jsonl.gz") + lines(tmp_path / "v.jsonl"))


def test_dedupe_exact_and_normalized(tmp_path):
    rows = [chat("Where is my order?", "Shipped."),
            chat("where is  my order? ", "shipped."),      # normalized duplicate of 1
            chat("Where is my order?", "Shipped."),        # exact duplicate of 1
            chat("订单到了吗", "到了"),
            {"messages": "not a list"}]  # not a valid example: kept as is
    src = tmp_path / "d.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
                   + '{"messages": [{"role": "user", "content": "Where is my order?"}, '
                     '{"role": "assistant", "content": "Shipped."}]}\n', "utf-8")
    r = dedupe_file(src, tmp_path / "n.jsonl")
    assert (r.kept, r.removed, r.unparsed) == (3, 3, 1)
    assert r.duplicates == [(2, 1), (3, 1), (6, 1)]  # line 6: same example, other spacing
    r = dedupe_file(src, tmp_path / "e.jsonl", normalized=False)
    assert (r.kept, r.removed) == (4, 2)
    assert lines(tmp_path / "e.jsonl")[1] == json.dumps(rows[1], ensure_ascii=False)


def test_cli_convert(tmp_path):
    src = write(tmp_path / "d.jsonl", [
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                      {"role": "assistant", "content": "a"}]}])
    out = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["convert", str(src), "--to", "bedrock-prompt-completion",
                              "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "lossy_system: 1 line(s) (lines 1)" in res.output
    assert json.loads(out.read_text()) == {"prompt": "s\n\nq", "completion": "a"}
    res = runner.invoke(app, ["convert", str(src), "--to", "vertex", "--json"])
    assert res.exit_code == 0
    assert json.loads(res.output)["written"] == 1
    assert (tmp_path / "d.vertex.jsonl").exists()


def test_cli_convert_failures(tmp_path):
    src = write(tmp_path / "d.jsonl", [chat("q", "a"), {"messages": [{"role": "user"}]}])
    res = runner.invoke(app, ["convert", str(src), "--to", "trl-dpo", "-o",
                              str(tmp_path / "o.jsonl")])
    assert res.exit_code == 1
    assert "line 1: [not_preference]" in res.output
    assert "line 2 messages[0].content: [missing_field]" in res.output
    assert not (tmp_path / "o.jsonl").exists()  # nothing written: no empty file left behind
    res = runner.invoke(app, ["convert", str(src), "--to", "csv"])
    assert res.exit_code == 1 and "unknown conversion target" in res.output
    res = runner.invoke(app, ["convert", str(tmp_path / "missing.jsonl"), "--to", "openai"])
    assert res.exit_code != 0 and "no such file" in res.output
    assert "Traceback" not in res.output


def test_cli_split_and_dedupe(tmp_path):
    src = write(tmp_path / "d.jsonl", [chat(f"q{i % 15}", "a") for i in range(20)])
    res = runner.invoke(app, ["split", str(src), "--validation", "0.25", "--seed", "3",
                              "-o", str(tmp_path / "parts")])
    assert res.exit_code == 0, res.output
    assert len(lines(tmp_path / "parts" / "d.train.jsonl")) == 15
    assert len(lines(tmp_path / "parts" / "d.validation.jsonl")) == 5
    res = runner.invoke(app, ["dedupe", str(src), "--json"])
    assert res.exit_code == 0
    assert json.loads(res.output)["removed"] == 5
    assert len(lines(tmp_path / "d.dedup.jsonl")) == 15


def test_gz_outputs_are_compressed(tmp_path):
    from unitune.data.convert import convert_file

    src = write(tmp_path / "d.jsonl", [chat("q", "a"), chat("q", "a")])
    convert_file(src, "vertex", tmp_path / "o.jsonl.gz")
    dedupe_file(src, tmp_path / "u.jsonl.gz")
    for name in ("o.jsonl.gz", "u.jsonl.gz"):
        assert (tmp_path / name).read_bytes()[:2] == b"\x1f\x8b"
    assert len(lines(tmp_path / "o.jsonl.gz")) == 2 and len(lines(tmp_path / "u.jsonl.gz")) == 1
