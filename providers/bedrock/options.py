"""`backend_options.bedrock` (or `UNITUNE_BEDROCK_<OPTION>`): every setting the Bedrock provider
reads, typed. The core merges constructor < spec < environment and refuses unknown keys, naming
the nearest valid one. Mappings (`vpc`, `hyperparameters`) may come from the environment as JSON.
"""
from __future__ import annotations

import json
from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from unitune.provider import Options


class Vpc(BaseModel):
    """`vpcConfig` of the job: the subnets and security groups Bedrock's training runs in."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    subnet_ids: list[str] = Field(min_length=1, alias="subnetIds")
    security_group_ids: list[str] = Field(min_length=1, alias="securityGroupIds")


class BedrockOptions(Options):
    """Settings of the Bedrock backend (docs/backends/bedrock.md has the table)."""

    role_arn: Optional[str] = Field(default=None, description="IAM role Bedrock assumes to read "
                                    "the data and write the model (required to submit).")
    bucket: Optional[str] = Field(default=None, description="S3 bucket for the data and the job's "
                                  "output, in the job's region (required to submit).")
    prefix: str = Field(default="unitune", description="Key prefix inside the bucket.")
    region: Optional[str] = Field(default=None, description="AWS region of the job. Default: the "
                                  "AWS chain's (AWS_REGION, profile) when the model tunes there, "
                                  "else the model's tuning region (Llama, Claude: us-west-2; "
                                  "Nova: us-east-1). A region the model does not tune in is "
                                  "refused, naming the right one.")
    kms_key_id: Optional[str] = Field(default=None, description="KMS key for the uploads (SSE-KMS) "
                                      "and the custom model (customModelKmsKeyId).")
    vpc: Optional[Vpc] = Field(default=None, description="Run the job in these subnets / security "
                               "groups (vpcConfig).")
    profile: Optional[str] = Field(default=None, description="AWS profile (kept with the job so "
                                   "later calls use it too).")
    hyperparameters: dict[str, Union[int, float, str]] = Field(
        default_factory=dict, description="Vendor-only hyperparameters by their Bedrock key "
        "(earlyStoppingPatience, evalPercentage…), range-checked against the catalog.")
    ignore_lifecycle: bool = Field(default=False, description="Submit even when the catalog (or "
                                   "`unitune models --refresh`) says the model is past its "
                                   "tuning cut-off; the refusal becomes a warning.")
    retry_mode: Optional[str] = Field(default=None, description="Deprecated, ignored: botocore "
                                      "retries are off; unitune's one policy retries "
                                      "(UNITUNE_RETRY_MAX).")
    max_attempts: Optional[int] = Field(default=None, description="Deprecated, ignored: use "
                                        "UNITUNE_RETRY_MAX.")

    @field_validator("vpc", "hyperparameters", mode="before")
    @classmethod
    def _json_from_env(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"expected a JSON object ({exc.msg})") from None
        return value


# option -> the environment variable that sets it (for hints)
def env_var(option: str) -> str:
    return f"UNITUNE_BEDROCK_{option.upper()}"
