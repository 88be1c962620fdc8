"""Format detection and normalization: one test per format, plus the structural problems."""
import pytest

from unitune.data.example import Example, Message, PreferenceExample, ToolCall
from unitune.data.formats import canonical_format, detect_format, normalize


def norm(obj, fmt=None):
    problems = []
    fmt = fmt or detect_format(obj)
    ex = normalize(obj, fmt, 3, problems, file="f.jsonl")
    return ex, problems


def codes(problems):
    return [(p.code, p.path) for p in problems]


U, A, S = "user", "assistant", "system"


def roles(ex):
    return [(m.role, m.content) for m in ex.messages]


# --- detection -------------------------------------------------------------------------------

@pytest.mark.parametrize("obj,fmt", [
    ({"messages": [{"role": "user", "content": "x"}]}, "messages"),
    ({"messages": [], "tools": []}, "messages"),
    ({"instruction": "a", "input": "", "output": "b"}, "alpaca"),
    ({"prompt": "a", "completion": "b"}, "prompt-completion"),
    ({"conversations": [{"from": "human", "value": "x"}]}, "sharegpt"),
    ({"input": {"messages": []}, "preferred_output": [], "non_preferred_output": []},
     "openai-dpo"),
    ({"prompt": "a", "chosen": "b", "rejected": "c"}, "trl-dpo"),
    ({"schemaVersion": "bedrock-conversation-2024", "messages": []}, "bedrock-converse"),
    ({"system": [{"text": "s"}], "messages": []}, "bedrock-converse"),
    ({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}, "bedrock-converse"),
    ({"system": "s", "messages": []}, "bedrock-claude"),
    ({"contents": [{"role": "user", "parts": [{"text": "x"}]}]}, "vertex"),
    ({"systemInstruction": {"parts": [{"text": "s"}]}}, "vertex"),
    ({"foo": 1}, None), ([1, 2], None), ("x", None),
])
def test_detect(obj, fmt):
    assert detect_format(obj) == fmt


def test_openai_parts_are_not_mistaken_for_converse():
    obj = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    assert detect_format(obj) == "messages"


def test_aliases():
    assert canonical_format("openai") == "messages"
    assert canonical_format("bedrock-prompt-completion") == "prompt-completion"
    assert canonical_format("VERTEX") == "vertex"
    assert canonical_format("nope") is None


# --- normalization per format --------------------------------------------------------------

def test_messages_full():
    obj = {"messages": [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "q", "name": "bob"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
        {"role": "assistant", "content": "a", "weight": 1}],
        "tools": [{"type": "function", "function": {"name": "f"}}], "parallel_tool_calls": True}
    ex, probs = norm(obj)
    assert probs == []
    assert isinstance(ex, Example) and ex.line == 3 and ex.parallel_tool_calls is True
    assert ex.messages[1].name == "bob"
    assert ex.messages[2].tool_calls == [ToolCall("c1", "f", "{}")]
    assert ex.messages[2].content is None
    assert ex.messages[3].tool_call_id == "c1" and ex.messages[4].weight == 1
    assert ex.tools == [{"type": "function", "function": {"name": "f"}}]


def test_messages_multimodal_parts_kept():
    parts = [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "u"}}]
    ex, probs = norm({"messages": [{"role": "user", "content": parts},
                                   {"role": "assistant", "content": "ok"}]})
    assert probs == [] and ex.messages[0].content == parts


def test_messages_fast_and_slow_paths_agree():
    fast, _ = norm({"messages": [{"role": "user", "content": "q"}]})
    slow, _ = norm({"messages": [{"content": "q", "role": "user", "name": None}]})
    assert fast == slow


def test_messages_unknown_roles_pass_through_for_the_validator():
    ex, probs = norm({"messages": [{"role": "customer", "content": "q"}]})
    assert probs == [] and ex.messages[0].role == "customer"


@pytest.mark.parametrize("obj,expected", [
    ({"messages": "hi"}, [("wrong_type", "messages")]),
    ({"messages": []}, [("empty_field", "messages")]),
    ({"messages": [{"content": "x"}]}, [("missing_field", "messages[0].role")]),
    ({"messages": [{"role": 3, "content": "x"}]}, [("wrong_type", "messages[0].role")]),
    ({"messages": [{"role": "user"}]}, [("missing_field", "messages[0].content")]),
    ({"messages": [{"role": "user", "content": ""}]}, [("empty_field", "messages[0].content")]),
    ({"messages": [{"role": "user", "content": 42}]}, [("wrong_type", "messages[0].content")]),
    ({"messages": ["user: hi"]}, [("wrong_type", "messages[0]")]),
    ({"messages": [{"role": "assistant", "content": "x", "weight": "1"}]},
     [("wrong_type", "messages[0].weight")]),
    ({"messages": [{"role": "assistant", "content": "x", "tool_calls": {}}]},
     [("wrong_type", "messages[0].tool_calls")]),
    ({"messages": [{"role": "assistant", "tool_calls": [{"id": "1", "function": {}}]}]},
     [("missing_field", "messages[0].tool_calls[0].function.name")]),
    ({"messages": [{"role": "user", "content": [{"type": "text"}]}]},
     [("missing_field", "messages[0].content[0].text")]),
    ({"messages": [{"role": "user", "content": "x"}], "tools": "nope"}, [("wrong_type", "tools")]),
    ({"messages": [{"role": "user", "content": "x"}], "parallel_tool_calls": "yes"},
     [("wrong_type", "parallel_tool_calls")]),
])
def test_messages_structural_errors(obj, expected):
    ex, probs = norm(obj, "messages")
    assert ex is None
    assert codes(probs) == expected
    assert all(p.line == 3 and p.file == "f.jsonl" and p.hint and p.severity == "error"
               for p in probs)


def test_unknown_fields_warn_but_keep_the_example():
    ex, probs = norm({"messages": [{"role": "user", "content": "x", "id": 1}], "meta": {}})
    assert ex is not None
    assert {(p.code, p.path, p.severity) for p in probs} == {
        ("unknown_field", "messages[0].id", "warning"), ("unknown_field", "meta", "warning")}


def test_dict_arguments_are_converted_with_a_warning():
    ex, probs = norm({"messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}]})
    assert ex.messages[0].tool_calls[0].arguments == '{"a":1}'
    assert [(p.code, p.severity) for p in probs] == [("wrong_type", "warning")]


def test_alpaca():
    ex, probs = norm({"instruction": "Translate", "input": "你好", "output": "Hello",
                      "system": "be brief"})
    assert probs == []
    assert roles(ex) == [(S, "be brief"), (U, "Translate\n\n你好"), (A, "Hello")]
    ex, _ = norm({"instruction": "Say hi", "input": "", "output": "hi"})
    assert roles(ex) == [(U, "Say hi"), (A, "hi")]
    ex, _ = norm({"instruction": "q2", "output": "a2", "history": [["q1", "a1"]]})
    assert roles(ex) == [(U, "q1"), (A, "a1"), (U, "q2"), (A, "a2")]


@pytest.mark.parametrize("obj,expected", [
    ({"instruction": "x"}, [("missing_field", "output")]),
    ({"instruction": "x", "output": ""}, [("empty_field", "output")]),
    ({"instruction": "", "input": "", "output": "y"}, [("empty_field", "instruction")]),
    ({"instruction": ["x"], "output": "y"}, [("wrong_type", "instruction")]),
    ({"instruction": "x", "output": "y", "history": [["only one"]]},
     [("wrong_type", "history[0]")]),
])
def test_alpaca_errors(obj, expected):
    ex, probs = norm(obj, "alpaca")
    assert ex is None and codes(probs) == expected


def test_prompt_completion():
    ex, probs = norm({"prompt": "2+2?", "completion": "4"})
    assert probs == [] and roles(ex) == [(U, "2+2?"), (A, "4")]
    ex, probs = norm({"prompt": [{"role": "user", "content": "q"}],
                      "completion": [{"role": "assistant", "content": "a"}]})
    assert probs == [] and roles(ex) == [(U, "q"), (A, "a")]
    ex, probs = norm({"prompt": "x"})
    assert ex is None and codes(probs) == [("missing_field", "completion")]


def test_sharegpt_with_tools():
    obj = {"system": "s", "tools": '[{"name": "lookup"}]', "conversations": [
        {"from": "human", "value": "where is 42?"},
        {"from": "function_call", "value": '{"name": "lookup", "arguments": {"id": 42}}'},
        {"from": "observation", "value": "shipped"},
        {"from": "gpt", "value": "It shipped."}]}
    ex, probs = norm(obj)
    assert probs == []
    assert [m.role for m in ex.messages] == [S, U, A, "tool", A]
    call = ex.messages[2].tool_calls[0]
    assert call.name == "lookup" and call.arguments == '{"id":42}'
    assert ex.messages[3].tool_call_id == call.id
    assert ex.tools == [{"name": "lookup"}]


def test_sharegpt_errors():
    ex, probs = norm({"conversations": [{"from": "human"}, {"value": "x"},
                                        {"from": "function_call", "value": "not json"}]})
    assert ex is None
    assert codes(probs) == [("missing_field", "conversations[0].value"),
                            ("missing_field", "conversations[1].from"),
                            ("wrong_type", "conversations[2].value")]


def test_openai_dpo():
    ex, probs = norm({"input": {"messages": [{"role": "user", "content": "q"}],
                                "tools": [{"type": "function"}]},
                      "preferred_output": [{"role": "assistant", "content": "good"}],
                      "non_preferred_output": [{"role": "assistant", "content": "bad"}]})
    assert probs == [] and isinstance(ex, PreferenceExample)
    assert ex.prompt == [Message(U, "q")] and ex.chosen == [Message(A, "good")]
    assert ex.rejected == [Message(A, "bad")] and ex.tools == [{"type": "function"}]
    ex, probs = norm({"input": "q", "preferred_output": [], "non_preferred_output": [
        {"role": "assistant", "content": "b"}]}, "openai-dpo")
    assert ex is None
    assert codes(probs) == [("wrong_type", "input"), ("empty_field", "preferred_output")]


def test_trl_dpo_string_conversational_and_implicit_prompt():
    ex, probs = norm({"prompt": "q", "chosen": "good", "rejected": "bad"})
    assert probs == [] and ex.prompt == [Message(U, "q")] and ex.chosen == [Message(A, "good")]
    ex, _ = norm({"prompt": [{"role": "user", "content": "q"}],
                  "chosen": [{"role": "assistant", "content": "g"}],
                  "rejected": [{"role": "assistant", "content": "b"}]})
    assert ex.prompt == [Message(U, "q")] and ex.rejected == [Message(A, "b")]
    shared = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]
    ex, probs = norm({"chosen": shared + [{"role": "assistant", "content": "g"}],
                      "rejected": shared + [{"role": "assistant", "content": "b"}]})
    assert probs == [] and [m.role for m in ex.prompt] == [S, U]
    assert ex.chosen == [Message(A, "g")] and ex.rejected == [Message(A, "b")]
    ex, probs = norm({"chosen": "g", "rejected": "b"})
    assert ex is None and codes(probs) == [("missing_field", "prompt")]


def test_bedrock_converse():
    obj = {"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "s"}],
           "messages": [{"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
                        {"role": "assistant", "content": [{"text": "c"}]}]}
    ex, probs = norm(obj)
    assert probs == []
    assert roles(ex) == [(S, "s"), (U, [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]),
                         (A, "c")]
    img = {"format": "png", "source": {"s3Location": {"uri": "s3://b/k.png"}}}
    ex, probs = norm({"schemaVersion": "bedrock-conversation-2024", "messages": [
        {"role": "user", "content": [{"text": "what?"}, {"image": img}]},
        {"role": "assistant", "content": [{"text": "a cat"}]}]})
    assert probs == [] and ex.messages[0].content[1] == {"type": "image", "image": img}


def test_bedrock_converse_errors():
    ex, probs = norm({"schemaVersion": "bedrock-conversation-2024", "messages": [
        {"role": "user", "content": "plain string"}, {"content": [{"text": "x"}]},
        {"role": "assistant", "content": [{"text": ""}]}]})
    assert ex is None
    assert codes(probs) == [("wrong_type", "messages[0].content"),
                            ("missing_field", "messages[1].role"),
                            ("empty_field", "messages[2].content[0].text")]
    ex, probs = norm({"schemaVersion": "v1", "messages": [
        {"role": "user", "content": [{"text": "x"}]}]})
    assert ex is not None and codes(probs) == [("unknown_schema_version", "schemaVersion")]


def test_bedrock_claude():
    ex, probs = norm({"system": "s", "messages": [{"role": "user", "content": "q"},
                                                  {"role": "assistant", "content": "a"}]})
    assert probs == [] and roles(ex) == [(S, "s"), (U, "q"), (A, "a")]
    ex, _ = norm({"system": "", "messages": [{"role": "user", "content": "q"}]})
    assert roles(ex) == [(U, "q")]


def test_vertex():
    obj = {"systemInstruction": {"role": "system", "parts": [{"text": "s"}]},
           "contents": [{"role": "user", "parts": [{"text": "q"}]},
                        {"role": "model", "parts": [{"text": "a"}]}]}
    ex, probs = norm(obj)
    assert probs == [] and roles(ex) == [(S, "s"), (U, "q"), (A, "a")]
    ex, probs = norm({"contents": [
        {"role": "user", "parts": [{"text": "see"}, {"fileData": {"mimeType": "image/png",
                                                                  "fileUri": "gs://b/x.png"}}]},
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"x": 1}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"ok": 1}}}]},
        {"role": "model", "parts": [{"text": "done"}]}]})
    assert probs == []
    assert [m.role for m in ex.messages] == [U, A, "tool", A]
    assert ex.messages[0].content[1]["type"] == "fileData"
    assert ex.messages[1].tool_calls[0].arguments == '{"x":1}'


def test_vertex_errors():
    ex, probs = norm({"contents": [{"role": "user", "parts": "q"}, {"parts": [{"text": "a"}]}]})
    assert ex is None
    assert codes(probs) == [("wrong_type", "contents[0].parts"),
                            ("missing_field", "contents[1].role")]


def test_not_an_object():
    ex, probs = norm([1, 2], "messages")
    assert ex is None and codes(probs) == [("not_an_object", None)]


def test_untyped_text_parts_warn_in_openai_data():
    ex, probs = norm({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}, "messages")
    assert ex is not None and codes(probs) == [("missing_part_type", "messages[0].content[0]")]
    ex, probs = norm({"messages": [{"role": "user", "content": [{"url": "x"}]}]}, "messages")
    assert ex is None and codes(probs) == [("missing_field", "messages[0].content[0].type")]
