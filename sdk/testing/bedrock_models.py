"""A fake of Bedrock's foundation-model listing (`ListFoundationModels`, `GetFoundationModel`).

moto 5.2.6 (the AWS fake the rest of the Bedrock tests use) does not implement these two
operations (its bedrock url map has no `/foundation-models` route), so this small loopback server
serves them in botocore's wire format (restJson: `GET /foundation-models?byCustomizationType=…`,
timestamps as epoch seconds). Point a client at it with `AWS_ENDPOINT_URL_BEDROCK`; the real boto3
client signs and parses as it would against AWS.

Each region has its own list (the region comes from the SigV4 credential scope). `filters` can be
switched off (`honour_filters=False`) to check that callers also filter client-side.

    with FakeFoundationModels() as fake:
        os.environ["AWS_ENDPOINT_URL_BEDROCK"] = fake.url
        boto3.client("bedrock", region_name="us-west-2").list_foundation_models(
            byCustomizationType="FINE_TUNING")
"""
from __future__ import annotations

import calendar
import json
import re
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .loopback import FakeHandler, LoopbackServer


def _ts(day: str) -> int:
    return calendar.timegm(date.fromisoformat(day).timetuple())


def summary(model_id: str, name: str, provider: str, customizations: list[str],
            status: str = "ACTIVE", legacy: str | None = None, end_of_life: str | None = None,
            region: str = "us-east-1") -> dict[str, Any]:
    """One FoundationModelSummary as AWS returns it."""
    life: dict[str, Any] = {"status": status}
    if legacy:
        life["legacyTime"] = _ts(legacy)
    if end_of_life:
        life["endOfLifeTime"] = _ts(end_of_life)
    return {"modelArn": f"arn:aws:bedrock:{region}::foundation-model/{model_id}",
            "modelId": model_id, "modelName": name, "providerName": provider,
            "inputModalities": ["TEXT"], "outputModalities": ["TEXT"],
            "responseStreamingSupported": False, "customizationsSupported": customizations,
            "inferenceTypesSupported": ["PROVISIONED"], "modelLifecycle": life}


def default_models() -> dict[str, list[dict[str, Any]]]:
    """Per region, a listing shaped like AWS's in late 2026 (illustrative lifecycle values)."""
    east = [
        summary("amazon.nova-micro-v1:0:128k", "Nova Micro", "Amazon", ["FINE_TUNING", "DISTILLATION"]),
        summary("amazon.nova-lite-v1:0:300k", "Nova Lite", "Amazon", ["FINE_TUNING", "DISTILLATION"]),
        summary("amazon.nova-pro-v1:0:300k", "Nova Pro", "Amazon", ["FINE_TUNING", "DISTILLATION"]),
        summary("amazon.nova-2-lite-v1:0:256k", "Nova 2 Lite", "Amazon", ["FINE_TUNING"]),
        summary("amazon.titan-text-express-v1:0:8k", "Titan Text G1 - Express", "Amazon",
                ["CONTINUED_PRE_TRAINING"], status="LEGACY", legacy="2026-04-30"),
        summary("amazon.titan-image-generator-v2:0", "Titan Image Generator G1 v2", "Amazon",
                ["FINE_TUNING"]),
    ]
    west = [summary(m, n, "Meta", ["FINE_TUNING"], region="us-west-2") for m, n in (
        ("meta.llama3-1-8b-instruct-v1:0:128k", "Llama 3.1 8B Instruct"),
        ("meta.llama3-1-70b-instruct-v1:0:128k", "Llama 3.1 70B Instruct"),
        ("meta.llama3-2-1b-instruct-v1:0:128k", "Llama 3.2 1B Instruct"),
        ("meta.llama3-2-3b-instruct-v1:0:128k", "Llama 3.2 3B Instruct"),
        ("meta.llama3-2-11b-instruct-v1:0:128k", "Llama 3.2 11B Instruct"),
        ("meta.llama3-2-90b-instruct-v1:0:128k", "Llama 3.2 90B Instruct"),
        ("meta.llama3-3-70b-instruct-v1:0:128k", "Llama 3.3 70B Instruct"))]
    west.append(summary("anthropic.claude-3-haiku-20240307-v1:0:200k", "Claude 3 Haiku",
                        "Anthropic", ["FINE_TUNING"], status="LEGACY", legacy="2026-03-10",
                        end_of_life="2026-09-10", region="us-west-2"))
    return {"us-east-1": east, "us-west-2": west}


_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/bedrock/")


class _Handler(FakeHandler):
    fake: "FakeFoundationModels"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        m = _REGION.search(self.headers.get("Authorization", ""))
        region = m.group(1) if m else "us-east-1"
        self.fake.requests.append({"path": url.path, "query": url.query, "region": region})
        listing = self.fake.models.get(region, [])
        if url.path.rstrip("/") == "/foundation-models":
            q = dict(parse_qsl(url.query))
            items = listing
            if self.fake.honour_filters and q.get("byCustomizationType"):
                items = [s for s in items
                         if q["byCustomizationType"] in s["customizationsSupported"]]
            if self.fake.honour_filters and q.get("byProvider"):
                items = [s for s in items if s["providerName"].lower() == q["byProvider"].lower()]
            return self._json(200, {"modelSummaries": items})
        if url.path.startswith("/foundation-models/"):
            wanted = unquote(url.path.split("/", 2)[2])
            for s in listing:
                if s["modelId"] == wanted or s["modelArn"] == wanted:
                    return self._json(200, {"modelDetails": s})
        return self._json(404, {"message": f"Could not resolve the foundation model from the "
                                           f"provided model identifier."},
                          error="ResourceNotFoundException")

    def _json(self, status: int, body: dict[str, Any], error: str | None = None) -> None:
        headers = [("x-amzn-ErrorType", error)] if error else []
        self.answer(status, json.dumps(body).encode(), "application/json", headers)


class FakeFoundationModels(LoopbackServer):
    """ListFoundationModels / GetFoundationModel on 127.0.0.1 (see the module docstring)."""

    def __init__(self, models: dict[str, list[dict[str, Any]]] | None = None, *,
                 honour_filters: bool = True, host: str = "127.0.0.1", port: int = 0) -> None:
        self.models = models if models is not None else default_models()
        self.honour_filters = honour_filters
        self.requests: list[dict[str, Any]] = []
        self.host, self.port = host, port
        self.url = ""

    def start(self) -> "FakeFoundationModels":
        self._serve_http(self.host, self.port, _Handler, "fake-bedrock-models")
        assert self._httpd is not None
        self.url = f"http://{self.host}:{self._httpd.server_address[1]}"
        return self

    def stop(self) -> None:
        self._close_http()
