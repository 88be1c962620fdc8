"""Calling Bedrock models: `bedrock-runtime` `converse`, through boto3 with botocore's retries off
(the core's RetryPolicy retries) and errors mapped by `aws.map_error`.

Tuned models are called through what `unitune deploy` created — the on-demand custom-model
deployment ARN or the provisioned-throughput ARN, recorded as the handle's `endpoint` — in the
job's region (its stored Location). A custom model that was never deployed cannot be invoked;
the error says how to deploy it. Base models are called by their on-demand id: the
customization variant's context suffix is dropped (`amazon.nova-micro-v1:0:128k` →
`amazon.nova-micro-v1:0`); name an inference profile (`us.amazon.nova-micro-v1:0`) with
`--model bedrock:<id>` where the model needs one.
"""
from __future__ import annotations

import re
import time
from typing import Any

from unitune.errors import InvalidRequest, UnituneError
from unitune.inference.types import GenParams, Generation, Message, normalize_finish, usage
from unitune.options import resolve_options

from .aws import aws_call, chain_region, client
from .options import BedrockOptions

DEFAULT_REGION = "us-east-1"
_CONTEXT_SUFFIX = re.compile(r":\d+k$")


def on_demand_id(model: str) -> str:
    """The invocable id of a base model named by its customization variant."""
    return _CONTEXT_SUFFIX.sub("", model) if not model.startswith("arn:") else model


def _region_of_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if arn.startswith("arn:") and len(parts) > 3 and parts[3] else None


class ConverseCaller:
    """One Bedrock model id or ARN, called with `converse`."""

    max_concurrency = 8

    def __init__(self, model: str, region: str | None, profile: str | None = None, *,
                 label: str | None = None, price: tuple[str, str] | None = None,
                 tuned: bool = False) -> None:
        self.backend = "bedrock"
        self.model = model
        self.region = region
        self.profile = profile
        self.label = label or f"bedrock:{model}"
        self.price = price
        self.tuned = tuned

    def request(self, messages: list[Message], params: GenParams) -> dict[str, Any]:
        """The `converse` keyword arguments: system turns apart, text content blocks, and
        consecutive turns of one role merged (Bedrock requires alternation)."""
        system = [{"text": str(m.get("content") or "")} for m in messages
                  if m.get("role") == "system" and m.get("content")]
        turns: list[dict[str, Any]] = []
        for m in messages:
            role = m.get("role")
            if role not in ("user", "assistant"):
                continue
            block = {"text": str(m.get("content") or "") or " "}
            if turns and turns[-1]["role"] == role:
                turns[-1]["content"].append(block)
            else:
                turns.append({"role": role, "content": [block]})
        config: dict[str, Any] = {"maxTokens": params.max_tokens,
                                  "temperature": min(1.0, float(params.temperature))}
        if params.top_p is not None:
            config["topP"] = params.top_p
        if params.stop:
            config["stopSequences"] = list(params.stop)[:4]
        kw: dict[str, Any] = {"modelId": self.model, "messages": turns, "inferenceConfig": config}
        if system:
            kw["system"] = system
        return kw

    def generate(self, messages: list[Message], params: GenParams) -> Generation:
        kw = self.request(messages, params)
        if not kw["messages"] or kw["messages"][0]["role"] != "user":
            raise InvalidRequest("a Bedrock conversation must start with a user message",
                                 backend="bedrock", hint="put a user turn first")
        started = time.monotonic()
        with aws_call("converse"):
            runtime = client("bedrock-runtime", self.region, self.profile)
            resp = runtime.converse(**kw)
        latency = time.monotonic() - started
        blocks = ((resp.get("output") or {}).get("message") or {}).get("content") or []
        text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict))
        u = resp.get("usage") or {}
        raw = {k: v for k, v in resp.items() if k != "ResponseMetadata"}
        return Generation(text=text, finish_reason=normalize_finish(resp.get("stopReason")),
                          usage=usage(u.get("inputTokens"), u.get("outputTokens")),
                          latency_s=latency, raw=raw, model=self.model)


def _options(options: dict[str, Any] | None) -> BedrockOptions:
    return resolve_options(BedrockOptions, "bedrock", base=options or {})  # type: ignore[return-value]


def _default_region(opts: BedrockOptions, model: str) -> str:
    from unitune.catalog import find_model

    info = find_model("bedrock", model)
    return (opts.region or _region_of_arn(model) or chain_region(opts.profile)
            or (info.regions[0] if info is not None and info.regions else DEFAULT_REGION))


def for_model(backend: str, model: str, *, base_url: str | None = None,
              options: dict[str, Any] | None = None) -> ConverseCaller:
    opts = _options(options)
    return ConverseCaller(on_demand_id(model), _default_region(opts, model), opts.profile,
                          price=("bedrock", model))


def for_job(rec: Any, *, base: bool = False, options: dict[str, Any] | None = None
            ) -> ConverseCaller:
    opts = _options(options)
    ref = rec.ref
    region = (rec.location.region if rec.location is not None else None) or \
        (ref.extra.get("region") if ref is not None else None)
    profile = opts.profile or (ref.extra.get("profile") if ref is not None else None) or \
        (rec.location.extra.get("profile") if rec.location is not None else None)
    base_model = rec.base_model or (rec.model.base_model if rec.model else None)
    if base:
        if not base_model:
            raise UnituneError(f"job {rec.id} does not record its base model",
                               hint="use `unitune generate --model bedrock:MODEL`")
        model = on_demand_id(base_model)
        return ConverseCaller(model, region or _default_region(opts, model), profile,
                              label=f"{rec.id} base ({model})", price=("bedrock", base_model))
    handle = rec.model
    if handle is None:
        raise UnituneError(f"job {rec.id} has no tuned model yet (status {rec.status})",
                           hint=f"wait for it: `unitune watch {rec.id}`")
    target = handle.endpoint or (handle.artifacts or {}).get("deployment")
    if not target:
        raise InvalidRequest(f"job {rec.id}'s custom model is not deployed: Bedrock invokes a "
                             "custom model only through an on-demand deployment or provisioned "
                             "throughput", backend="bedrock",
                             hint=f"`unitune deploy {rec.id}` (it shows the hosting cost first)")
    return ConverseCaller(target, _region_of_arn(target) or region or
                          _default_region(opts, target), profile,
                          label=f"{rec.id} tuned ({handle.name or target})",
                          price=("bedrock", base_model) if base_model else None, tuned=True)
