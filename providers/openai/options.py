"""`backend_options.openai` / `backend_options.azure`: every setting the two providers read.

The core merges the spec's `backend_options.<backend>`, `UNITUNE_<BACKEND>_<OPTION>` variables and
the pipeline's base options into these models (unknown keys are refused, naming the nearest valid
one). Secrets are `SecretStr`; keys normally come from the vendor's own environment variables
(OPENAI_API_KEY, AZURE_OPENAI_API_KEY), never from spec files. Options read only by `deploy`
(Azure Resource Manager coordinates) are fields here too, so `unitune deploy -o key=value` is
checked the same way.
"""
from __future__ import annotations

import json
from datetime import date
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from unitune.provider import Options


class Wandb(BaseModel):
    """Weights & Biases run settings, sent as `integrations: [{type: wandb, wandb: {...}}]`."""

    model_config = ConfigDict(extra="forbid")

    project: str = Field(description="W&B project (required by the API)")
    entity: Optional[str] = Field(None, description="W&B team or user")
    name: Optional[str] = Field(None, description="display name of the run")
    tags: list[str] = Field(default_factory=list, description="run tags")

    def integration(self) -> dict[str, Any]:
        cfg = {k: v for k, v in self.model_dump().items() if v not in (None, [], "")}
        return {"type": "wandb", "wandb": cfg}


def _json_text(value: Any) -> Any:
    """`UNITUNE_<BACKEND>_WANDB='{"project": "p"}'`: a JSON string from the environment."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class _Common(Options):
    """Options both providers read (declared once; each provider's model adds its own)."""

    api_key: Optional[SecretStr] = Field(None, description="the API key itself (prefer the "
                                         "vendor's environment variable; never a spec file)")
    api_key_env: Optional[str] = Field(None, description="name of the environment variable "
                                       "holding the key (default: the vendor's own)")
    timeout: Optional[float] = Field(None, gt=0, description="per-request timeout, seconds "
                                     "(default: the SDK's, 600 s)")
    poll_interval: float = Field(2.0, gt=0, description="seconds between checks while an "
                                 "uploaded file is processed")
    upload_wait_s: float = Field(1800.0, gt=0, description="longest wait for an uploaded file "
                                 "to be processed, seconds")
    wandb: Optional[Wandb] = Field(None, description="{project, entity, name, tags} → a wandb "
                                   "integration")
    integrations: Optional[list[dict[str, Any]]] = Field(None, description="the raw "
                                                         "`integrations` list, sent as is "
                                                         "(wins over wandb)")
    ignore_lifecycle: bool = Field(False, description="submit even after the model's cut-off "
                                   "date")
    today: Optional[date] = Field(None, description="evaluate lifecycle dates as of this ISO "
                                  "date (default: UNITUNE_TODAY, which every backend reads, "
                                  "else the real date)")
    max_retries: Optional[int] = Field(None, ge=0, description="deprecated, not applied: SDK "
                                       "retries are always off; unitune's one retry policy "
                                       "is set with UNITUNE_RETRY_MAX")
    create_attempts: Optional[int] = Field(None, ge=1, description="deprecated, not applied: "
                                           "see max_retries")

    @field_validator("wandb", "integrations", mode="before")
    @classmethod
    def _from_json(cls, value: Any) -> Any:
        return _json_text(value)


class OpenAIOptions(_Common):
    """Options of the OpenAI backend (each also settable as UNITUNE_OPENAI_<NAME>)."""

    base_url: Optional[str] = Field(None, description="API root (default: OPENAI_BASE_URL, then "
                                    "https://api.openai.com/v1)")
    organization: Optional[str] = Field(None, description="organization header (default: "
                                        "OPENAI_ORG_ID)")
    project: Optional[str] = Field(None, description="project header (default: "
                                   "OPENAI_PROJECT_ID)")


class AzureOptions(_Common):
    """Options of the Azure OpenAI backend (each also settable as UNITUNE_AZURE_<NAME>)."""

    endpoint: Optional[str] = Field(None, description="https://<resource>.openai.azure.com "
                                    "(default: AZURE_OPENAI_ENDPOINT; required)")
    api_version: Optional[str] = Field(None, description="data-plane API version (default: "
                                       "AZURE_OPENAI_API_VERSION, OPENAI_API_VERSION, then "
                                       "2025-04-01-preview)")
    auth: Optional[Literal["key", "entra"]] = Field(None, description="entra: a Microsoft Entra "
                                                    "token from azure-identity's "
                                                    "DefaultAzureCredential")
    training_type: Union[int, str] = Field(1, description="`trainingType` sent with every job "
                                           "(SFT and DPO): 1 = standard (regional), "
                                           "globalstandard = Global training (many more "
                                           "regions), developer; other strings pass through")
    # deployment (`unitune deploy`): Azure Resource Manager coordinates and settings
    subscription_id: Optional[str] = Field(None, description="deploy: Azure subscription id")
    resource_group: Optional[str] = Field(None, description="deploy: resource group")
    account: Optional[str] = Field(None, description="deploy: the Azure OpenAI resource name")
    sku: str = Field("standard", description="deploy: standard, globalstandard or developer "
                     "(sent as developertier; other names pass through)")
    capacity: int = Field(1, ge=1, description="deploy: capacity units")
    deployment_name: Optional[str] = Field(None, description="deploy: deployment name "
                                           "(default: derived from the tuned model id)")
    arm_endpoint: str = Field("https://management.azure.com", description="deploy: Resource "
                              "Manager root")
    arm_api_version: Optional[str] = Field(None, description="deploy: Resource Manager API "
                                           "version (default: 2025-07-01-preview for the "
                                           "developer tier, which needs it; else 2024-10-01)")
    arm_token_env: str = Field("AZURE_ARM_TOKEN", description="deploy: variable holding a "
                               "Resource Manager bearer token (without one, azure-identity is "
                               "tried)")
    arm_token: Optional[SecretStr] = Field(None, description="deploy: the bearer token itself "
                                           "(prefer arm_token_env)")

    @field_validator("training_type", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value
