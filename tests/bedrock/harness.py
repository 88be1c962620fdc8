"""Conformance harness for Bedrock on moto: scenarios are played by changing moto's in-process
job state (moto never advances a job itself) and by writing the metrics CSVs Bedrock would write
into moto's S3."""
from __future__ import annotations

from pathlib import Path

from unitune.job import RemoteRef

from .conftest import Aws, make_spec

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
        from unitune.providers.bedrock import BedrockBackend

        self.aws = aws
        self.backend = BedrockBackend()
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
        if job.status in ("Stopped", "Completed", "Failed"):
            return
        if tick < 2:
            return  # first look: still InProgress
        if scenario == "success":
            put_metrics(self.aws, job)
            job.status = "Completed"
        elif scenario == "failure":
            job.status = "Failed"
            job.failure_message = self.failure_message
        elif scenario == "unknown_status":
            job.status = self.unknown_raw
