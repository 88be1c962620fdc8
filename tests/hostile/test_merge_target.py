"""`unitune merge -o DIR` never deletes what it did not write (issue 12 item 1): a typo such as
`-o ~` used to `rmtree` the directory."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from unitune.errors import UnituneError
from unitune.local.merge import MARKER, _check_target, _save


class _Saves:
    def __init__(self, *names: str) -> None:
        self.names = names

    def save_pretrained(self, path, **_kw) -> None:
        for n in self.names:
            (Path(path) / n).write_text(n)


class _Job:
    base_model, adapter_dir, adapter_type = "tiny", Path("adapter"), "lora"


def test_a_non_empty_folder_is_refused_and_left_alone(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    for force in (False, True):
        with pytest.raises(UnituneError, match="not empty"):
            _check_target(home, force=force)
    assert (home / "thesis.tex").read_text() == "years of work"


def test_an_earlier_merge_needs_force_and_only_its_files_are_replaced(tmp_path):
    out = tmp_path / "merged"
    out.mkdir()
    _save(_Saves("model.safetensors", "config.json"), _Saves("tokenizer.json"), out, _Job())
    (out / "notes.md").write_text("mine")
    assert sorted(json.loads((out / MARKER).read_text())["files"]) == sorted(
        ["config.json", "model.safetensors", "tokenizer.json", MARKER])
    with pytest.raises(UnituneError, match="--force"):
        _check_target(out, force=False)
    _check_target(out, force=True)
    _save(_Saves("model.safetensors", "config.json"), _Saves("tokenizer.json"), out, _Job())
    assert (out / "notes.md").read_text() == "mine"  # not written by unitune: kept
    assert not list(tmp_path.glob(".merged.partial-*"))  # no scratch left behind


def test_an_empty_or_missing_folder_is_fine(tmp_path):
    _check_target(tmp_path / "new", force=False)
    (tmp_path / "empty").mkdir()
    _check_target(tmp_path / "empty", force=False)
    with pytest.raises(UnituneError, match="not a directory"):
        (tmp_path / "file").write_text("x")
        _check_target(tmp_path / "file", force=False)
