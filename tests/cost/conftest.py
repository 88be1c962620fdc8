"""Fixtures for the cost tests: a small Chinese/English chat dataset and a spec around it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml"


def write_chats(path: Path, n: int, *, long_every: int = 0, long_chars: int = 0) -> Path:
    """n chats; every `long_every`-th one gets a `long_chars`-character user turn."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            user = f"我的订单 {i} 还没有到，请帮我查一下物流。"
            if long_every and i % long_every == 0:
                user += "很" * long_chars
            rec = {"messages": [
                {"role": "system", "content": "你是一个礼貌的客服助手。"},
                {"role": "user", "content": user},
                {"role": "assistant", "content": f"您好！订单 {i} 已发货，预计两天内送达。Thanks!"},
            ]}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


@pytest.fixture
def chat_file(tmp_path) -> Path:
    return write_chats(tmp_path / "data" / "chats.jsonl", 120)


@pytest.fixture
def quickstart_copy(tmp_path) -> Path:
    """examples/quickstart.yaml copied next to a generated data/support_zh.jsonl (120 chats)."""
    write_chats(tmp_path / "data" / "support_zh.jsonl", 120)
    dst = tmp_path / "quickstart.yaml"
    dst.write_text(QUICKSTART.read_text(encoding="utf-8"), encoding="utf-8")
    return dst
