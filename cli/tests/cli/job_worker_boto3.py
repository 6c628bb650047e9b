"""A job worker for a custom action type, written with boto3 the way CodePipeline's job workers
are (the Jenkins plugin, in-house pollers), run by cli/tests/cli/jobs.rs against `baton serve`.

Usage: python job_worker_boto3.py ENDPOINT_URL
Credentials and region come from AWS_* variables. Exits non-zero on the first failed check and
prints "job worker scenario passed" when every check held.
"""

import io
import sys
import zipfile

import boto3
from scenario import error_code, poll
from shapes import ShapeChecker
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint = sys.argv[1]
cp = boto3.client("codepipeline", endpoint_url=endpoint)
shapes = ShapeChecker(cp)
TYPE = {"category": "Build", "owner": "Custom", "provider": "BatonTestWorker", "version": "1"}






def status_is(execution_id, status):
    def check():
        e = cp.get_pipeline_execution(pipelineName="custom", pipelineExecutionId=execution_id)
        s = e["pipelineExecution"]["status"]
        assert s in ("InProgress", status), f"execution {execution_id} is {s}, not {status}"
        return e["pipelineExecution"] if s == status else None

    return poll(f"execution {execution_id} is {status}", check)


def next_job(query=None):
    args = {"actionTypeId": TYPE, "maxBatchSize": 1}
    if query:
        args["queryParam"] = query
    return poll("a job is queued", lambda: (cp.poll_for_jobs(**args)["jobs"] or [None])[0])


def s3_for(job):
    """An S3 client with the job's own credentials, as a worker makes one."""
    c = job["data"]["artifactCredentials"]
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=c["accessKeyId"],
        aws_secret_access_key=c["secretAccessKey"],
        aws_session_token=c["sessionToken"],
        config=Config(s3={"addressing_style": "path"}),
    )


def place(artifact):
    loc = artifact["location"]["s3Location"]
    return loc["bucketName"], loc["objectKey"]


# ---- registering the type ----------------------------------------------------------------------
created = cp.create_custom_action_type(
    category="Build",
    provider="BatonTestWorker",
    version="1",
    settings={"executionUrlTemplate": "https://ci.example/{Config:ProjectName}/{ExternalExecutionId}"},
    configurationProperties=[
        {"name": "ProjectName", "required": True, "key": True, "secret": False, "queryable": True},
        {"name": "Token", "required": False, "key": False, "secret": True},
    ],
    inputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
    outputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
)
assert created["actionType"]["id"] == TYPE, created
listed = cp.list_action_types(actionOwnerFilter="Custom")["actionTypes"]
assert [t["id"] for t in listed] == [TYPE], listed
assert error_code(
    cp.create_custom_action_type,
    category="Build",
    provider="BatonTestWorker",
    version="1",
    inputArtifactDetails={"minimumCount": 0, "maximumCount": 2},
    outputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
) == "ValidationException"
assert error_code(cp.poll_for_jobs, actionTypeId={**TYPE, "provider": "Nobody"}) == "ActionTypeNotFoundException"

# The same type as CodePipeline's newer declaration, and changed through it.
declared = cp.get_action_type(**TYPE)["actionType"]
assert declared["executor"]["type"] == "JobWorker", declared
assert declared["urls"] == {"executionUrlTemplate": "https://ci.example/{Config:ProjectName}/{ExternalExecutionId}"}, declared
assert [(p["name"], p["optional"], p["noEcho"]) for p in declared["properties"]] == [
    ("ProjectName", False, False), ("Token", True, True)], declared
declared["description"] = "Builds on the test worker"
declared["urls"]["entityUrlTemplate"] = "https://ci.example/{Config:ProjectName}"
declared["properties"][1]["description"] = "an API token"
cp.update_action_type(actionType=declared)
again = cp.get_action_type(**TYPE)["actionType"]
assert again["description"] == "Builds on the test worker", again
assert again["urls"]["entityUrlTemplate"] == "https://ci.example/{Config:ProjectName}", again
assert again["properties"][1]["description"] == "an API token", again
lambda_run = {**declared, "executor": {"type": "Lambda", "configuration": {
    "lambdaExecutorConfiguration": {"lambdaFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:f"}}}}
assert error_code(cp.update_action_type, actionType=lambda_run) == "ValidationException"
assert error_code(cp.update_action_type, actionType={**declared, "id": {**TYPE, "provider": "Nobody"}}) == "ActionTypeNotFoundException"
assert error_code(cp.get_action_type, **{**TYPE, "owner": "AWS", "provider": "CodeBuild"}) == "ActionTypeNotFoundException"

# ---- a pipeline whose build is the worker's ----------------------------------------------------
cp.create_pipeline(pipeline={
    "name": "custom",
    "roleArn": "arn:aws:iam::123456789012:role/baton",
    "pipelineType": "V2",
    "artifactStore": {"type": "S3", "location": "baton-artifacts"},
    "stages": [
        {"name": "Source", "actions": [{
            "name": "Source",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
            "configuration": {"RepositoryName": "app", "BranchName": "main", "PollForSourceChanges": "false"},
            "outputArtifacts": [{"name": "SourceOutput"}],
        }]},
        {"name": "Build", "actions": [{
            "name": "Jenkins",
            "namespace": "BuildVars",
            "actionTypeId": TYPE,
            "configuration": {"ProjectName": "app", "Token": "s3cr3t"},
            "inputArtifacts": [{"name": "SourceOutput"}],
            "outputArtifacts": [{"name": "Built"}],
        }]},
        {"name": "Check", "actions": [{
            "name": "Check",
            "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
            "commands": ["test \"$(cat built.txt)\" = \"built from buildspec.yml\"", "test \"$TAG\" = v42"],
            "environmentVariables": [{"name": "TAG", "value": "#{BuildVars.ImageTag}"}],
            "inputArtifacts": [{"name": "Built"}],
        }]},
    ],
})

# ---- a job done: input read, output written, variables given -----------------------------------
first = cp.start_pipeline_execution(name="custom")["pipelineExecutionId"]
assert cp.poll_for_jobs(actionTypeId=TYPE, queryParam={"ProjectName": "other"})["jobs"] == []
job = next_job({"ProjectName": "app"})
data = job["data"]
assert data["actionTypeId"] == TYPE, data
assert data["actionConfiguration"]["configuration"] == {"ProjectName": "app", "Token": "s3cr3t"}, data
assert data["pipelineContext"]["pipelineName"] == "custom", data
assert data["pipelineContext"]["stage"]["name"] == "Build", data
assert data["pipelineContext"]["pipelineExecutionId"] == first, data
assert [a["name"] for a in data["inputArtifacts"]] == ["SourceOutput"], data
assert [a["name"] for a in data["outputArtifacts"]] == ["Built"], data
assert data["inputArtifacts"][0].get("revision"), "the input's revision is missing"
assert error_code(cp.acknowledge_job, jobId=job["id"], nonce="wrong") == "InvalidNonceException"
assert cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "InProgress"
assert cp.get_job_details(jobId=job["id"])["jobDetails"]["id"] == job["id"]

s3 = s3_for(job)
bucket, key = place(data["inputArtifacts"][0])
source = zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
assert "buildspec.yml" in source.namelist(), source.namelist()
out_bucket, out_key = place(data["outputArtifacts"][0])
# The grant covers this job's objects only: not another key, and never writing an input.
assert error_code(s3.get_object, Bucket=bucket, Key=key + "x") == "AccessDenied"
assert error_code(s3.put_object, Bucket=bucket, Key=key, Body=b"x") == "AccessDenied"
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("built.txt", "built from buildspec.yml")
s3.put_object(Bucket=out_bucket, Key=out_key, Body=buf.getvalue())
cp.put_job_success_result(
    jobId=job["id"],
    executionDetails={"summary": "built by the test worker", "externalExecutionId": "42", "percentComplete": 100},
    outputVariables={"ImageTag": "v42"},
)
status_is(first, "Succeeded")
assert error_code(cp.put_job_success_result, jobId=job["id"]) == "InvalidJobStateException"
assert error_code(s3.get_object, Bucket=bucket, Key=key) == "InvalidAccessKeyId", "credentials outlive their job"
actions = cp.list_action_executions(pipelineName="custom", filter={"pipelineExecutionId": first})
build = next(a for a in actions["actionExecutionDetails"] if a["actionName"] == "Jenkins")
assert build["output"]["outputVariables"] == {"ImageTag": "v42"}, build
# A secret property reads back masked everywhere but in the worker's job, as CodePipeline's do.
assert build["input"]["configuration"] == {"ProjectName": "app", "Token": "****"}, build
assert build["input"]["resolvedConfiguration"]["Token"] == "****", build
declared = cp.get_pipeline(name="custom")["pipeline"]
jenkins = declared["stages"][1]["actions"][0]
assert jenkins["configuration"] == {"ProjectName": "app", "Token": "****"}, jenkins
assert build["output"]["executionResult"]["externalExecutionSummary"] == "built by the test worker", build
assert build["output"]["executionResult"]["externalExecutionUrl"] == "https://ci.example/app/42", build

# ---- a job that goes on under a continuation token ----------------------------------------------
second = cp.start_pipeline_execution(name="custom")["pipelineExecutionId"]
job = next_job()
assert "continuationToken" not in job["data"], job["data"]
cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
cp.put_job_success_result(jobId=job["id"], continuationToken="half-way",
                          executionDetails={"summary": "half", "percentComplete": 50})
again = next_job()
assert again["id"] != job["id"], "a continued job keeps its id"
assert again["data"]["continuationToken"] == "half-way", again["data"]
# The continued job lends the same artifacts as the job it continues.
assert again["data"]["outputArtifacts"] == job["data"]["outputArtifacts"], again["data"]
out_bucket, out_key = place(again["data"]["outputArtifacts"][0])
s3_for(again).put_object(Bucket=out_bucket, Key=out_key, Body=buf.getvalue())
cp.acknowledge_job(jobId=again["id"], nonce=again["nonce"])
cp.put_job_success_result(jobId=again["id"], outputVariables={"ImageTag": "v42"})
status_is(second, "Succeeded")

# ---- a job that fails ----------------------------------------------------------------------------
third = cp.start_pipeline_execution(name="custom")["pipelineExecutionId"]
job = next_job()
cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
assert error_code(cp.put_job_failure_result, jobId=job["id"],
                  failureDetails={"type": "Broken", "message": "x"}) == "ValidationException"
cp.put_job_failure_result(jobId=job["id"], failureDetails={"type": "JobFailed", "message": "tests failed on the worker"})
status_is(third, "Failed")
state = cp.get_pipeline_state(name="custom")
build = next(s for s in state["stageStates"] if s["stageName"] == "Build")
details = build["actionStates"][0]["latestExecution"]["errorDetails"]
assert details["message"] == "tests failed on the worker", details

assert error_code(cp.get_job_details, jobId="00000000-0000-4000-8000-000000000000") == "JobNotFoundException"
assert error_code(cp.get_job_details, jobId="not-a-job") == "ValidationException"

# ---- a type deleted: its pipelines are refused at start, naming what to do -----------------------
cp.delete_custom_action_type(category="Build", provider="BatonTestWorker", version="1")
assert cp.list_action_types(actionOwnerFilter="Custom")["actionTypes"] == []
try:
    cp.start_pipeline_execution(name="custom")
    raise AssertionError("a pipeline of a deleted type started")
except ClientError as e:
    message = e.response["Error"]["Message"]
    assert e.response["Error"]["Code"] == "ValidationException", e.response
    assert "Build/Custom/BatonTestWorker/1" in message and "create-custom-action-type" in message, message

shapes.assert_clean(at_least=5)
print("job worker scenario passed")
