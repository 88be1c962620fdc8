"""Duplicate keys and file hashing."""
import gzip
import hashlib

from unitune.data.example import Example, Message, PreferenceExample, ToolCall
from unitune.data.hashing import file_sha256
from unitune.data.keys import exact_key, normalize_text, normalized_key


def ex(*pairs, line=0, **kw):
    return Example([Message(r, c) for r, c in pairs], line=line, **kw)


def test_exact_key_ignores_line_but_not_content():
    a = ex(("user", "Hi"), ("assistant", "Hello"), line=1)
    assert exact_key(a) == exact_key(ex(("user", "Hi"), ("assistant", "Hello"), line=99))
    assert exact_key(a) != exact_key(ex(("user", "Hi "), ("assistant", "Hello")))
    assert exact_key(a) != exact_key(ex(("user", "Hello"), ("assistant", "Hi")))
    # role matters
    assert exact_key(a) != exact_key(ex(("system", "Hi"), ("assistant", "Hello")))


def test_exact_key_sees_weights_tools_and_calls():
    a = Example([Message("user", "x"), Message("assistant", "y")])
    b = Example([Message("user", "x"), Message("assistant", "y", weight=0)])
    c = Example([Message("user", "x"),
                 Message("assistant", None, tool_calls=[ToolCall("c1", "f", "{}")])])
    d = Example(a.messages, tools=[{"type": "function", "function": {"name": "f"}}])
    assert len({exact_key(a), exact_key(b), exact_key(c), exact_key(d)}) == 4


def test_normalized_key_collapses_whitespace_and_case():
    a = ex(("user", "Where is  my\norder?"), ("assistant", "It SHIPPED."))
    b = ex(("user", " where is my order? "), ("assistant", "it shipped."))
    assert exact_key(a) != exact_key(b)
    assert normalized_key(a) == normalized_key(b)
    assert normalized_key(a) != normalized_key(ex(("user", "where is my order?"),
                                                  ("assistant", "it shipped!")))
    # CJK text is untouched by case folding but whitespace still collapses
    assert normalized_key(ex(("user", "订单 到了吗"), ("assistant", "到了"))) == \
        normalized_key(ex(("user", "订单  到了吗\n"), ("assistant", "到了")))
    assert normalize_text("  A \t B\n") == "a b"


def test_normalized_key_text_parts_equal_string():
    a = ex(("user", "hi"), ("assistant", "yo"))
    b = Example([Message("user", [{"type": "text", "text": "Hi"}]), Message("assistant", "yo")])
    assert normalized_key(a) == normalized_key(b)


def test_turn_boundaries_matter():
    a = ex(("user", "a b"), ("assistant", "c"))
    b = ex(("user", "a"), ("assistant", "b c"))
    assert normalized_key(a) != normalized_key(b)


def test_preference_keys():
    p = PreferenceExample([Message("user", "q")], [Message("assistant", "good")],
                          [Message("assistant", "bad")])
    q = PreferenceExample([Message("user", "q")], [Message("assistant", "bad")],
                          [Message("assistant", "good")])
    assert exact_key(p) != exact_key(q)
    assert normalized_key(p) != normalized_key(q)
    sft = ex(("user", "q"), ("assistant", "good"))
    assert exact_key(p) != exact_key(sft)


def test_file_sha256_streams_and_matches_hashlib(tmp_path):
    f = tmp_path / "big.jsonl"
    payload = b'{"a": 1}\n' * 300_000  # > 2 chunks
    f.write_bytes(payload)
    assert file_sha256(f) == hashlib.sha256(payload).hexdigest()
    g = tmp_path / "x.jsonl.gz"
    g.write_bytes(gzip.compress(b"{}\n"))
    assert file_sha256(g) == hashlib.sha256(g.read_bytes()).hexdigest()


def test_normalized_key_sees_images():
    def with_image(url):
        return Example([Message("user", [{"type": "text", "text": "What is this?"},
                                         {"type": "image_url", "image_url": {"url": url}}]),
                        Message("assistant", "A cat.")])
    assert normalized_key(with_image("a.png")) != normalized_key(with_image("b.png"))
    assert normalized_key(with_image("a.png")) == normalized_key(with_image("a.png"))
