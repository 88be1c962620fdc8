"""The translation table, pinned: spec in → the request the worker reads out, one golden file per
variant (tests/local/golden/<case>.json). Machine-specific values (the data folder, UNITUNE_HOME,
content hashes of split files) are normalised to placeholders. Regenerate with
UPDATE_GOLDEN=1 after an intended change, and say why in the change."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from unitune.local.backend import LocalProvider
from unitune.pipeline import Pipeline
from unitune.provider import Ids
from unitune.spec import JobSpec

from .golden_cases import CASES, write_data

GOLDEN = Path(__file__).parent / "golden"


def normalise(value, data: Path, home: Path):
    text = json.dumps(value, indent=2, sort_keys=True)
    text = text.replace(str(data.resolve()), "<data>").replace(str(home.resolve()), "<home>")
    return json.loads(re.sub(r"[0-9a-f]{64}", "<sha256>", text))


@pytest.mark.parametrize("case", sorted(CASES))
def test_request_matches_golden(case, tmp_path, _isolated_env):
    from tests.conformance.suite import same_except_placeholders

    data = write_data(tmp_path / "data")
    spec = JobSpec.from_dict(CASES[case], source_dir=str(data))
    pipe = Pipeline(LocalProvider())
    plan = pipe.plan(spec)
    assert plan.ready, [p.message for p in plan.problems if p.severity == "error"]
    sub = pipe.prepare_submission(spec)
    ids = Ids(job_id="ut-golden", key="key-golden", spec_hash=spec.spec_hash())
    request = pipe.provider.translate(spec, sub.prepared, sub.location, sub.options, ids).request
    assert same_except_placeholders(plan.request, request) == []  # plan shows what train sends
    got = normalise(request, data, _isolated_env)
    path = GOLDEN / f"{case}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(path.read_text())
