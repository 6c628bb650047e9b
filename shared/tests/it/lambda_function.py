"""A CodePipeline Lambda action's function, as users write them (boto3), run as its own process
by shared/tests/it/lambda_invoke.rs for each asynchronous invocation.

Usage: python lambda_function.py EVENT_FILE API_URL
It reads the `CodePipeline.job` event, reads its input artifact and writes its output artifact
with the job's credentials, and reports through the CodePipeline API at API_URL: once with a
continuation token, then with its output variables; with UserParameters "fail", a failure.
"""

import io
import json
import sys
import zipfile

import boto3
from botocore.config import Config

event = json.load(open(sys.argv[1]))
api = sys.argv[2]
job = event["CodePipeline.job"]
data = job["data"]
params = data["actionConfiguration"]["configuration"].get("UserParameters", "")
cp = boto3.client("codepipeline", endpoint_url=api)

if params == "fail":
    cp.put_job_failure_result(jobId=job["id"], failureDetails={"type": "JobFailed", "message": "the canary died"})
    sys.exit(0)

if "continuationToken" not in data:
    cp.put_job_success_result(jobId=job["id"], continuationToken="deploying",
                              executionDetails={"summary": "half-way", "percentComplete": 50})
    sys.exit(0)

creds = data["artifactCredentials"]
s3 = boto3.client(
    "s3",
    endpoint_url=api,
    aws_access_key_id=creds["accessKeyId"],
    aws_secret_access_key=creds["secretAccessKey"],
    aws_session_token=creds["sessionToken"],
    config=Config(s3={"addressing_style": "path"}),
)
source = data["inputArtifacts"][0]["location"]["s3Location"]
files = zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=source["bucketName"], Key=source["objectKey"])["Body"].read()))
out = io.BytesIO()
with zipfile.ZipFile(out, "w") as z:
    z.writestr("made.txt", "made from " + ",".join(sorted(files.namelist())))
target = data["outputArtifacts"][0]["location"]["s3Location"]
s3.put_object(Bucket=target["bucketName"], Key=target["objectKey"], Body=out.getvalue())
cp.put_job_success_result(jobId=job["id"], outputVariables={"Result": "ok", "Params": params},
                          executionDetails={"summary": "deployed"})
