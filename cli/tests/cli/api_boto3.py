"""The control API release scenario through boto3, run by cli/tests/cli/api.rs.

Usage: python api_boto3.py ENDPOINT_URL BATON_HOME
Credentials and region come from AWS_* variables. Exits non-zero on the first failed check and
prints "boto3 scenario passed" when every check held.
"""

import datetime
import json
import sys
from pathlib import Path

import boto3
from scenario import error_code, poll
from shapes import ShapeChecker

endpoint, home = sys.argv[1], Path(sys.argv[2])
cp = boto3.client("codepipeline", endpoint_url=endpoint)
shapes = ShapeChecker(cp)






def status_is(execution_id, status):
    def check():
        e = cp.get_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)
        return e["pipelineExecution"] if e["pipelineExecution"]["status"] == status else None

    return poll(f"execution {execution_id} is {status}", check)


def stage(state, name):
    return next(s for s in state["stageStates"] if s["stageName"] == name)


def approval_token(execution_id):
    def check():
        s = stage(cp.get_pipeline_state(name="app"), "Approve")
        latest = s["actionStates"][0].get("latestExecution", {})
        mine = s.get("latestExecution", {}).get("pipelineExecutionId") == execution_id
        return latest.get("token") if mine and latest.get("status") == "InProgress" else None

    return poll("the approval waits", check)


declaration = json.loads((home / "pipeline.json").read_text())
invalid = json.loads((home / "invalid.json").read_text())

created = cp.create_pipeline(**declaration)
assert created["pipeline"]["version"] == 1, created
got = cp.get_pipeline(name="app")
round_trip = dict(got["pipeline"])
round_trip.pop("version")
# As CodePipeline prints it: actions given without artifacts show empty lists.
printed = json.loads(json.dumps(declaration["pipeline"]))
for declared in printed["stages"]:
    for act in declared["actions"]:
        act.setdefault("inputArtifacts", [])
        act.setdefault("outputArtifacts", [])
assert round_trip == printed, round_trip
assert got["metadata"]["pipelineArn"] == "arn:aws:codepipeline:us-east-1:000000000000:app"
assert got["metadata"]["created"].year >= 2024, got["metadata"]  # parsed as a timestamp
assert error_code(cp.create_pipeline, **declaration) == "PipelineNameInUseException"
try:
    cp.create_pipeline(**invalid)
    raise AssertionError("an invalid pipeline was created")
except cp.exceptions.InvalidStructureException as e:
    assert "Compile" in str(e), str(e)
assert [p["name"] for p in cp.list_pipelines()["pipelines"]] == ["app"]
assert error_code(cp.get_pipeline, name="nope") == "PipelineNotFoundException"

first = cp.start_pipeline_execution(name="app", variables=[{"name": "Greeting", "value": "hi"}])[
    "pipelineExecutionId"
]
status_is(first, "Failed")
retry = dict(pipelineName="app", pipelineExecutionId=first, retryMode="FAILED_ACTIONS")
assert error_code(cp.retry_stage_execution, stageName="Build", **retry) == "StageNotRetryableException"
(home / "pass").write_text("")
cp.retry_stage_execution(stageName="Check", **retry)

token = approval_token(first)
approval = dict(pipelineName="app", stageName="Approve", actionName="Release",
                result={"summary": "ship it", "status": "Approved"})
assert error_code(cp.put_approval_result, token="11111111-2222-4333-8444-555555555555",
                  **approval) == "InvalidApprovalTokenException"
approved = cp.put_approval_result(token=token, **approval)
assert approved["approvedAt"].year >= 2024, approved
assert error_code(cp.put_approval_result, token=token, **approval) == "ApprovalAlreadyCompletedException"
done = status_is(first, "Succeeded")
assert {"name": "Greeting", "resolvedValue": "hi"} in done["variables"], done
assert (home / "s3/site/index.html").read_text().strip() == "site"

summaries = cp.list_pipeline_executions(pipelineName="app")["pipelineExecutionSummaries"]
assert [s["status"] for s in summaries] == ["Succeeded"], summaries
details = cp.list_action_executions(pipelineName="app", filter={"pipelineExecutionId": first})[
    "actionExecutionDetails"
]
checkout = next(d for d in details if d["actionName"] == "Checkout")
# The retried check is listed once per attempt, the latest first, each with its own id.
checks = [d for d in details if d["stageName"] == "Check"]
assert [d["status"] for d in checks] == ["Succeeded", "Failed"], checks
assert checks[0]["actionExecutionId"] != checks[1]["actionExecutionId"], checks
assert "errorDetails" in checks[1]["output"]["executionResult"], checks[1]
assert len(checkout["output"]["outputVariables"]["CommitId"]) == 40, checkout
# Read-only operations the scenario has no other use for, for their answers' shapes.
deploy = next(d for d in details if d["stageName"] == "Deploy")
targets = cp.list_deploy_action_execution_targets(pipelineName="app", actionExecutionId=deploy["actionExecutionId"])
assert targets["targets"] == [], targets
assert cp.list_rule_executions(pipelineName="app")["ruleExecutionDetails"] == []
assert any(t["id"]["provider"] == "DeploymentWindow" for t in cp.list_rule_types()["ruleTypes"])
assert any(t["id"]["provider"] == "Manual" for t in cp.list_action_types()["actionTypes"])

cp.disable_stage_transition(pipelineName="app", stageName="Build", transitionType="Inbound",
                            reason="code freeze")
second = cp.start_pipeline_execution(name="app", clientRequestToken="boto-2")["pipelineExecutionId"]
again = cp.start_pipeline_execution(name="app", clientRequestToken="boto-2")["pipelineExecutionId"]
assert again == second


def held():
    build = stage(cp.get_pipeline_state(name="app"), "Build")
    waiting = build.get("inboundExecution", {}).get("pipelineExecutionId") == second
    return build if waiting else None


build = poll("the execution waits before Build", held)
assert build["inboundTransitionState"]["enabled"] is False
assert build["inboundTransitionState"]["disabledReason"] == "code freeze"
cp.enable_stage_transition(pipelineName="app", stageName="Build", transitionType="Inbound")
approval_token(second)
cp.stop_pipeline_execution(pipelineName="app", pipelineExecutionId=second, abandon=True, reason="enough")
assert status_is(second, "Stopped")["statusSummary"] == "enough"
assert error_code(cp.stop_pipeline_execution, pipelineName="app", pipelineExecutionId=second,
                  abandon=True) == "PipelineExecutionNotStoppableException"
assert error_code(cp.get_pipeline_execution, pipelineName="app",
                  pipelineExecutionId="00000000-0000-4000-8000-000000000000") == "PipelineExecutionNotFoundException"

# boto3's paginator follows nextToken page by page.
pages = list(cp.get_paginator("list_pipeline_executions").paginate(
    pipelineName="app", PaginationConfig={"PageSize": 1}))
assert [len(p["pipelineExecutionSummaries"]) for p in pages] == [1, 1], pages
assert [p["pipelineExecutionSummaries"][0]["pipelineExecutionId"] for p in pages] == [second, first]

# A revision the source already ran starts nothing new.
commit = checkout["output"]["outputVariables"]["CommitId"]
revision = cp.put_action_revision(pipelineName="app", stageName="Source", actionName="Checkout",
                                  actionRevision={"revisionId": commit, "revisionChangeId": commit,
                                                  "created": datetime.datetime.now()})
assert revision["newRevision"] is False, revision
# The deploy rolled back to the first execution's artifacts, as a ROLLBACK execution.
rollback = cp.rollback_stage(pipelineName="app", stageName="Deploy", targetPipelineExecutionId=first)
rolled = status_is(rollback["pipelineExecutionId"], "Succeeded")
assert rolled["executionType"] == "ROLLBACK", rolled

# CodePipeline's webhooks, for their answers' shapes (deliveries are tested in webhooks.rs).
hook = {"name": "app-hook", "targetPipeline": "app", "targetAction": "Checkout",
        "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{BranchName}"}],
        "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": "s3cret"}}
put = cp.put_webhook(webhook=hook, tags=[{"key": "team", "value": "web"}])["webhook"]
assert put["definition"] == hook and "/trigger?t=" in put["url"], put
listed = cp.list_webhooks(MaxResults=10)["webhooks"]
assert [w["definition"]["name"] for w in listed] == ["app-hook"], listed
assert listed[0]["tags"] == [{"key": "team", "value": "web"}], listed
hook_arn = "arn:aws:codepipeline:us-east-1:000000000000:webhook:app-hook"
cp.tag_resource(resourceArn=hook_arn, tags=[{"key": "stage", "value": "prod"}])
cp.untag_resource(resourceArn=hook_arn, tagKeys=["team"])
assert cp.list_tags_for_resource(resourceArn=hook_arn)["tags"] == [{"key": "stage", "value": "prod"}]
cp.delete_webhook(name="app-hook")
assert error_code(cp.list_tags_for_resource, resourceArn=hook_arn) == "ResourceNotFoundException"
assert cp.list_webhooks()["webhooks"] == []

changed = json.loads(json.dumps(declaration["pipeline"]))
changed["variables"][0]["defaultValue"] = "bonjour"
assert cp.update_pipeline(pipeline=changed)["pipeline"]["version"] == 2
arn = "arn:aws:codepipeline:us-east-1:000000000000:app"
cp.tag_resource(resourceArn=arn, tags=[{"key": "stage", "value": "prod"}])
cp.untag_resource(resourceArn=arn, tagKeys=["team"])
assert cp.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "stage", "value": "prod"}]
cp.delete_pipeline(name="app")
assert error_code(cp.get_pipeline, name="app") == "PipelineNotFoundException"
shapes.assert_clean(at_least=5)
print("boto3 scenario passed")
