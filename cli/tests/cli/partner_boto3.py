"""A partner's job worker (owner ThirdParty), written with boto3 as partners' integrations are,
run by cli/tests/cli/jobs.rs against `baton serve` after `baton partner register` gave it its
client id and token (read from HOME/partner.json).

Usage: python partner_boto3.py ENDPOINT_URL HOME
Prints "partner scenario passed" when every check held.
"""

import io
import json
import os
import sys
import zipfile

import boto3
from botocore.config import Config
from scenario import error_code, poll
from shapes import ShapeChecker

endpoint, home = sys.argv[1], sys.argv[2]
cp = boto3.client("codepipeline", endpoint_url=endpoint)
shapes = ShapeChecker(cp)
TYPE = {"category": "Test", "owner": "ThirdParty", "provider": "BatonPartner", "version": "1"}
with open(os.path.join(home, "partner.json")) as f:
    pair = json.load(f)
CLIENT_ID, TOKEN = pair["clientId"], pair["clientToken"]


def status_is(execution_id, status):
    def check():
        e = cp.get_pipeline_execution(pipelineName="partnered", pipelineExecutionId=execution_id)
        s = e["pipelineExecution"]["status"]
        assert s in ("InProgress", status), f"execution {execution_id} is {s}, not {status}"
        return e["pipelineExecution"] if s == status else None

    return poll(f"execution {execution_id} is {status}", check)


def next_job():
    """The next job's id, as a partner polls: the details need the client token."""
    def check():
        jobs = cp.poll_for_third_party_jobs(actionTypeId=TYPE, maxBatchSize=1)["jobs"]
        return jobs[0] if jobs else None

    job = poll("a partner job is queued", check)
    assert job["clientId"] == CLIENT_ID, job
    return job["jobId"]


def details(job_id):
    return cp.get_third_party_job_details(jobId=job_id, clientToken=TOKEN)["jobDetails"]


listed = cp.list_action_types(actionOwnerFilter="ThirdParty")["actionTypes"]
assert [t["id"] for t in listed] == [TYPE], listed
assert all(t["id"]["owner"] == "Custom" for t in cp.list_action_types(actionOwnerFilter="Custom")["actionTypes"])

cp.create_pipeline(pipeline={
    "name": "partnered",
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
        {"name": "Test", "actions": [{
            "name": "LoadTest",
            "actionTypeId": TYPE,
            "configuration": {"Suite": "smoke"},
            "inputArtifacts": [{"name": "SourceOutput"}],
        }]},
    ],
})

# ---- a job done, continued once -----------------------------------------------------------------
first = cp.start_pipeline_execution(name="partnered")["pipelineExecutionId"]
job_id = next_job()
# The workers' operations for custom types reach none of a partner's jobs.
assert error_code(cp.poll_for_jobs, actionTypeId=TYPE) == "ActionTypeNotFoundException"
assert error_code(cp.get_job_details, jobId=job_id) == "JobNotFoundException"
assert error_code(cp.get_third_party_job_details, jobId=job_id, clientToken="not-the-token") == "InvalidClientTokenException"
job = details(job_id)
data = job["data"]
assert job["id"] == job_id and job["nonce"], job
assert data["actionTypeId"] == TYPE, data
assert data["actionConfiguration"]["configuration"] == {"Suite": "smoke"}, data
context = data["pipelineContext"]
assert context["pipelineName"] == "partnered" and context["action"]["name"] == "LoadTest", context
# As CodePipeline: partners are not told the pipeline's ARN nor its execution's id.
assert "pipelineArn" not in context and "pipelineExecutionId" not in context, context
assert [a["name"] for a in data["inputArtifacts"]] == ["SourceOutput"], data
assert error_code(cp.acknowledge_third_party_job, jobId=job_id, nonce="wrong", clientToken=TOKEN) == "InvalidNonceException"
assert error_code(cp.acknowledge_third_party_job, jobId=job_id, nonce=job["nonce"], clientToken="x") == "InvalidClientTokenException"
assert cp.acknowledge_third_party_job(jobId=job_id, nonce=job["nonce"], clientToken=TOKEN)["status"] == "InProgress"

c = data["artifactCredentials"]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=c["accessKeyId"],
                  aws_secret_access_key=c["secretAccessKey"], aws_session_token=c["sessionToken"],
                  config=Config(s3={"addressing_style": "path"}))
loc = data["inputArtifacts"][0]["location"]["s3Location"]
source = zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=loc["bucketName"], Key=loc["objectKey"])["Body"].read()))
assert "buildspec.yml" in source.namelist(), source.namelist()

cp.put_third_party_job_success_result(jobId=job_id, clientToken=TOKEN, continuationToken="run-7",
                                      executionDetails={"summary": "half", "percentComplete": 50})
again_id = next_job()
assert again_id != job_id, "a continued job keeps its id"
again = details(again_id)
assert again["data"]["continuationToken"] == "run-7", again["data"]
cp.acknowledge_third_party_job(jobId=again_id, nonce=again["nonce"], clientToken=TOKEN)
cp.put_third_party_job_success_result(jobId=again_id, clientToken=TOKEN,
                                      executionDetails={"summary": "load test passed", "externalExecutionId": "run-7"})
status_is(first, "Succeeded")
assert error_code(cp.put_third_party_job_success_result, jobId=again_id, clientToken=TOKEN) == "InvalidJobStateException"
actions = cp.list_action_executions(pipelineName="partnered", filter={"pipelineExecutionId": first})
test = next(a for a in actions["actionExecutionDetails"] if a["actionName"] == "LoadTest")
result = test["output"]["executionResult"]
assert result["externalExecutionSummary"] == "load test passed", result
assert result["externalExecutionUrl"] == "https://partner.example/smoke/run-7", result

# ---- a job that fails ----------------------------------------------------------------------------
second = cp.start_pipeline_execution(name="partnered")["pipelineExecutionId"]
job_id = next_job()
job = details(job_id)
cp.acknowledge_third_party_job(jobId=job_id, nonce=job["nonce"], clientToken=TOKEN)
assert error_code(cp.put_third_party_job_failure_result, jobId=job_id, clientToken=TOKEN,
                  failureDetails={"type": "Broken", "message": "x"}) == "ValidationException"
cp.put_third_party_job_failure_result(jobId=job_id, clientToken=TOKEN,
                                      failureDetails={"type": "JobFailed", "message": "p99 above 800 ms"})
status_is(second, "Failed")
state = cp.get_pipeline_state(name="partnered")
test = next(s for s in state["stageStates"] if s["stageName"] == "Test")
assert test["actionStates"][0]["latestExecution"]["errorDetails"]["message"] == "p99 above 800 ms", test

assert error_code(cp.get_third_party_job_details, jobId="00000000-0000-4000-8000-000000000000", clientToken=TOKEN) == "JobNotFoundException"
shapes.assert_clean(at_least=6)
print("partner scenario passed")
