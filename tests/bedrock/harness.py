"""Conformance harness for Bedrock on moto: scenarios are played by changing moto's in-process
job state (moto never advances a job itself) and by writing the metrics CSVs Bedrock would write
into moto's S3; what the fake received is read from the recording front (conftest.Front)."""
from __future__ import annotations

from pathlib import Path

from unitune.job import RemoteRef
from unitune.providers.bedrock import BedrockProvider

from .conftest import Aws, aws_env, make_spec

TRAIN_CSV = ("step_number,epoch_number,training_loss,perplexity\n"
             "1,0,2.50,12.18\n2,0,1.90,6.69\n3,1,1.40,4.06\n4,1,1.10,3.00\n")
VALID_CSV = "step_number,epoch_number,validation_loss,perplexity\n2,0,2.00,7.39\n4,1,1.30,3.67\n"


def put_metrics(aws: Aws, job, *, nested_validation: bool = False) -> None:
    """Write the CSVs where Bedrock writes them: <output>/model-customization-job-<jobId>/…"""
    out = job.output_data_config["s3Uri"]
    bucket, _, prefix = out[5:].partition("/")
    job_id = job.job_arn.rsplit("/", 1)[-1]
    base = f"{prefix.rstrip('/')}/model-customization-job-{job_id}"
    s3 = aws.client("s3")
    s3.put_object(Bucket=bucket, Key=f"{base}/training_artifacts/step_wise_training_metrics.csv",
                  Body=TRAIN_CSV.encode())
    level = "validation/" if nested_validation else ""
    s3.put_object(Bucket=bucket, Key=f"{base}/validation_artifacts/post_fine_tuning_validation/"
                  f"{level}validation_metrics.csv", Body=VALID_CSV.encode())


class MotoHarness:
    failure_message = "Insufficient permissions on s3://unitune-test-bucket (planted by the harness)"
    unknown_raw = "Provisioning"  # not one of InProgress/Completed/Failed/Stopping/Stopped
    timeout_s = 20

    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.provider = BedrockProvider()
        self.spawn = ("unitune.providers.bedrock:BedrockProvider", {}, aws_env(aws.url))
        self._next = "success"
        self._scenario: dict[str, str] = {}
        self._ticks: dict[str, int] = {}

    def make_spec(self, tmp_path: Path):
        return make_spec(tmp_path)

    def arrange(self, scenario: str) -> None:
        self._next = scenario

    def advance(self, ref: RemoteRef) -> None:
        name = ref.extra["job_name"]
        scenario = self._scenario.setdefault(name, self._next)
        tick = self._ticks[name] = self._ticks.get(name, 0) + 1
        job = self.aws.job(name)
        if job.status in ("Stopped", "Completed", "Failed") or tick < 2:
            return  # the first look sees it InProgress
        if scenario == "success":
            put_metrics(self.aws, job)
            job.status = "Completed"
        elif scenario == "failure":
            job.status = "Failed"
            job.failure_message = self.failure_message
        elif scenario == "unknown_status":
            job.status = self.unknown_raw
        elif scenario == "slow" and job.status == "Stopping":
            job.status = "Stopped"

    def last_request(self) -> dict | None:
        """The body of the last create_model_customization_job request moto received: for
        Bedrock's REST protocol every parameter of that operation travels in the JSON body."""
        return self.aws.front.creates[-1].body if self.aws.front.creates else None

    def uploads(self) -> int:
        return self.aws.front.s3_puts

    def missing_ref(self) -> RemoteRef:
        return RemoteRef(backend="bedrock", remote_id="arn:aws:bedrock:us-east-1:123456789012:"
                         "model-customization-job/amazon.nova-micro-v1:0:128k/nope00000000",
                         extra={"job_name": "ut-never-created", "region": "us-east-1"})

    def rate_limit_next(self, retry_after: float) -> None:
        """The next Bedrock call gets HTTP 429 ThrottlingException with a Retry-After header,
        answered on the wire by the front (botocore parses it as it would Bedrock's)."""
        self.aws.front.throttle_next(retry_after)
