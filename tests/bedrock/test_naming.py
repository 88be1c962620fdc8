"""Names, tokens and tags derived from unitune's job id always satisfy the patterns in botocore's
service model (a name AWS rejects would fail the job after the upload)."""
from __future__ import annotations

import re

import botocore.session
from hypothesis import given, settings
from hypothesis import strategies as st

from unitune.providers.bedrock import naming

_MODEL = botocore.session.get_session().get_service_model("bedrock")
_CREATE = _MODEL.operation_model("CreateModelCustomizationJob").input_shape.members
_DEPLOY = _MODEL.operation_model("CreateCustomModelDeployment").input_shape.members
_TAG = _CREATE["jobTags"].member.members


def ok(value: str, shape) -> bool:
    meta = shape.metadata
    return (meta.get("min", 0) <= len(value) <= meta.get("max", 10**6)
            and re.fullmatch(meta["pattern"], value) is not None)


keys = st.text(min_size=1, max_size=120)


@settings(max_examples=300, deadline=None)
@given(key=keys, spec_name=st.text(min_size=1, max_size=80))
def test_derived_names_match_the_service_model(key, spec_name):
    assert ok(naming.job_name_for(key), _CREATE["jobName"])
    assert ok(naming.token_for(key), _CREATE["clientRequestToken"])
    model = naming.model_name_for(spec_name, key)
    assert ok(model, _CREATE["customModelName"])
    for kind in ("od", "pt"):
        assert ok(naming.deployment_name_for(model, kind), _DEPLOY["modelDeploymentName"])
    tag = naming.tag(spec_name, key)
    assert ok(tag["key"], _TAG["key"]) and ok(tag["value"], _TAG["value"])


def test_names_are_stable_and_distinct():
    a, b = "ut-20261128-ab12cd-" + "x" * 60, "ut-20261128-ab12cd-" + "y" * 60
    assert naming.job_name_for(a) == naming.job_name_for(a)
    assert naming.job_name_for(a) != naming.job_name_for(b)  # truncation keeps a hash of the key
    assert naming.token_for(a) != naming.token_for(b)
    assert naming.job_name_for("ut-20261128-ab12cd") == "ut-20261128-ab12cd"
