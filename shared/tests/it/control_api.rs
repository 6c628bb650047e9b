//! The control API over an embedded runtime in a temporary home, called without a transport.

use serde_json::{Value, json};

use baton::api::*;
use baton::embedded::{Embedded, EmbeddedConfig};
use baton::ports::clock::{Clock, SystemClock};

const CALLER: &str = "arn:aws:iam::000000000000:user/test";

fn pipeline(name: &str) -> Value {
    json!({
        "name": name,
        "roleArn": "arn:aws:iam::111111111111:role/p",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "variables": [{"name": "Greeting", "defaultValue": "hello"}],
        "pipelineType": "V2",
        "stages": [
            {"name": "Source", "actions": [{"name": "Fetch",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": "in", "S3ObjectKey": "app.zip"},
                "outputArtifacts": [{"name": "Src"}]}]},
            {"name": "Approve", "actions": [{"name": "Gate",
                "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]}
        ]
    })
}

struct Fixture {
    _home: tempfile::TempDir,
    api: ControlApi,
}

fn fixture() -> Fixture {
    let home = tempfile::tempdir().unwrap();
    let config =
        EmbeddedConfig { home: home.path().to_path_buf(), quiet: true, ..Default::default() };
    let rt = Embedded::open(&config).unwrap();
    let credentials = Credentials::from([("AKID".to_string(), "secret".to_string())]);
    Fixture { api: rt.control_api("us-east-1", credentials), _home: home }
}

impl Fixture {
    async fn call(&self, op: &str, input: Value) -> (u16, Value) {
        let reply = self.api.call(op, input.to_string().as_bytes(), CALLER).await;
        (reply.status, reply.json())
    }

    async fn ok(&self, op: &str, input: Value) -> Value {
        let (status, body) = self.call(op, input).await;
        assert_eq!(status, 200, "{op}: {body}");
        body
    }

    async fn err(&self, op: &str, input: Value) -> (String, String) {
        let (status, body) = self.call(op, input).await;
        assert_eq!(status, 400, "{op}: {body}");
        (
            body["__type"].as_str().unwrap().to_string(),
            body["message"].as_str().unwrap().to_string(),
        )
    }
}

#[tokio::test]
async fn a_created_pipeline_reads_back_as_given_with_version_and_metadata() {
    let f = fixture();
    let created = f
        .ok(
            "CreatePipeline",
            json!({"pipeline": pipeline("p"), "tags": [{"key": "team", "value": "a"}]}),
        )
        .await;
    assert_eq!(created["pipeline"]["version"], 1);
    assert_eq!(created["tags"], json!([{"key": "team", "value": "a"}]));
    let got = f.ok("GetPipeline", json!({"name": "p"})).await;
    // As CodePipeline prints it: what was given, with what it fills where nothing was.
    let mut expected = pipeline("p");
    expected["version"] = json!(1);
    expected["executionMode"] = json!("SUPERSEDED");
    expected["stages"][0]["actions"][0]["runOrder"] = json!(1);
    expected["stages"][0]["actions"][0]["inputArtifacts"] = json!([]);
    expected["stages"][1]["actions"][0]["runOrder"] = json!(1);
    expected["stages"][1]["actions"][0]["inputArtifacts"] = json!([]);
    expected["stages"][1]["actions"][0]["outputArtifacts"] = json!([]);
    assert_eq!(got["pipeline"], expected);
    assert_eq!(created["pipeline"], expected, "CreatePipeline answers the same");
    assert_eq!(got["metadata"]["pipelineArn"], "arn:aws:codepipeline:us-east-1:000000000000:p");
    assert!(got["metadata"]["created"].as_f64().unwrap() > 1.6e9);

    let mut changed = pipeline("p");
    changed["variables"][0]["defaultValue"] = json!("bye");
    let updated = f.ok("UpdatePipeline", json!({"pipeline": changed})).await;
    assert_eq!(updated["pipeline"]["version"], 2);
    let (code, _) = f.err("GetPipeline", json!({"name": "p", "version": 1})).await;
    assert_eq!(code, "PipelineVersionNotFoundException");
    let tags = f
        .ok(
            "ListTagsForResource",
            json!({"resourceArn": "arn:aws:codepipeline:us-east-1:000000000000:p"}),
        )
        .await;
    assert_eq!(tags["tags"][0]["key"], "team", "an update keeps the tags");
}

#[tokio::test]
async fn creating_twice_or_reading_a_missing_pipeline_fails_with_codepipelines_exceptions() {
    let f = fixture();
    f.ok("CreatePipeline", json!({"pipeline": pipeline("p")})).await;
    let (code, message) = f.err("CreatePipeline", json!({"pipeline": pipeline("p")})).await;
    assert_eq!(code, "PipelineNameInUseException");
    assert!(message.contains("'p'"), "{message}");
    let (code, message) = f.err("GetPipeline", json!({"name": "nope"})).await;
    assert_eq!(code, "PipelineNotFoundException");
    assert!(message.contains("'nope'"), "{message}");
    let (code, _) = f.err("UpdatePipeline", json!({"pipeline": pipeline("nope")})).await;
    assert_eq!(code, "PipelineNotFoundException");
    f.ok("DeletePipeline", json!({"name": "p"})).await;
    f.ok("DeletePipeline", json!({"name": "p"})).await;
    assert_eq!(f.err("GetPipeline", json!({"name": "p"})).await.0, "PipelineNotFoundException");
}

#[tokio::test]
async fn an_invalid_declaration_is_an_invalid_structure_naming_the_action() {
    let f = fixture();
    let mut bad = pipeline("bad");
    bad["stages"][1]["actions"][0]["inputArtifacts"] = json!([{"name": "Nowhere"}]);
    let (code, message) = f.err("CreatePipeline", json!({"pipeline": bad})).await;
    assert_eq!(code, "InvalidStructureException");
    assert!(message.contains("Approve") && message.contains("Gate"), "{message}");
    assert_eq!(f.err("GetPipeline", json!({"name": "bad"})).await.0, "PipelineNotFoundException");
}

/// CodePipeline accepts a pipeline whatever runs its actions, so a user moves one unchanged;
/// what this host cannot run is refused when it would start, before anything runs.
#[tokio::test]
async fn an_unrunnable_pipeline_is_created_and_its_start_refused_naming_the_action() {
    let f = fixture();
    let mut ecs = pipeline("ecs");
    ecs["stages"][1]["actions"][0] = json!({"name": "Ship",
        "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ServiceCatalog", "version": "1"},
        "configuration": {"ProductId": "prod-1"}, "inputArtifacts": [{"name": "Src"}]});
    let created = f.ok("CreatePipeline", json!({"pipeline": ecs})).await;
    assert_eq!(created["pipeline"]["stages"][1]["actions"][0]["name"], "Ship");
    f.ok("GetPipeline", json!({"name": "ecs"})).await;
    let (code, message) = f.err("StartPipelineExecution", json!({"name": "ecs"})).await;
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "stage \"Approve\", action \"Ship\": Baton has no provider for AWS/Deploy/ServiceCatalog actions yet, so this pipeline can be created and kept here but not run"
    );
    let listed = f.ok("ListPipelineExecutions", json!({"pipelineName": "ecs"})).await;
    assert_eq!(listed["pipelineExecutionSummaries"], json!([]), "nothing ran half-way");
}

#[tokio::test]
async fn list_pipelines_pages_with_next_token() {
    let f = fixture();
    for name in ["a", "b", "c"] {
        f.ok("CreatePipeline", json!({"pipeline": pipeline(name)})).await;
    }
    let first = f.ok("ListPipelines", json!({"maxResults": 2})).await;
    let names: Vec<&str> = first["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(first["pipelines"][0]["pipelineType"], "V2");
    let token = first["nextToken"].as_str().unwrap();
    let second = f.ok("ListPipelines", json!({"maxResults": 2, "nextToken": token})).await;
    assert_eq!(second["pipelines"][0]["name"], "c");
    assert!(second.get("nextToken").is_none());
    let (code, _) = f.err("ListPipelines", json!({"nextToken": "garbage"})).await;
    assert_eq!(code, "InvalidNextTokenException");
}

#[tokio::test]
async fn a_client_request_token_makes_a_start_idempotent() {
    let f = fixture();
    f.ok("CreatePipeline", json!({"pipeline": pipeline("p")})).await;
    let start = json!({"name": "p", "clientRequestToken": "tok-1", "variables": [{"name": "Greeting", "value": "hi"}]});
    let a = f.ok("StartPipelineExecution", start.clone()).await;
    let b = f.ok("StartPipelineExecution", start).await;
    assert_eq!(a["pipelineExecutionId"], b["pipelineExecutionId"]);
    let c =
        f.ok("StartPipelineExecution", json!({"name": "p", "clientRequestToken": "tok-2"})).await;
    assert_ne!(a["pipelineExecutionId"], c["pipelineExecutionId"]);
    let id = a["pipelineExecutionId"].as_str().unwrap();
    let e =
        f.ok("GetPipelineExecution", json!({"pipelineName": "p", "pipelineExecutionId": id})).await;
    assert_eq!(e["pipelineExecution"]["status"], "InProgress");
    assert_eq!(
        e["pipelineExecution"]["variables"],
        json!([{"name": "Greeting", "resolvedValue": "hi"}])
    );
    assert_eq!(e["pipelineExecution"]["trigger"]["triggerDetail"], CALLER);
    let listed = f.ok("ListPipelineExecutions", json!({"pipelineName": "p"})).await;
    assert_eq!(listed["pipelineExecutionSummaries"].as_array().unwrap().len(), 2);
    // Pages of a listing (read from the store a page at a time) follow each other, newest
    // first, and the last has no token.
    for n in 3..=5 {
        f.ok(
            "StartPipelineExecution",
            json!({"name": "p", "clientRequestToken": format!("tok-{n}")}),
        )
        .await;
    }
    let ids = |listed: &Value| -> Vec<String> {
        let summaries = listed["pipelineExecutionSummaries"].as_array().unwrap();
        summaries.iter().map(|e| e["pipelineExecutionId"].as_str().unwrap().to_string()).collect()
    };
    let all = ids(&f.ok("ListPipelineExecutions", json!({"pipelineName": "p"})).await);
    assert_eq!(all.len(), 5);
    let (mut paged, mut token, mut pages) = (Vec::new(), None::<Value>, 0);
    loop {
        let mut input = json!({"pipelineName": "p", "maxResults": 2});
        if let Some(t) = token {
            input["nextToken"] = t;
        }
        let page = f.ok("ListPipelineExecutions", input).await;
        paged.extend(ids(&page));
        pages += 1;
        token = page.get("nextToken").cloned();
        if token.is_none() {
            break;
        }
    }
    assert_eq!((paged, pages), (all, 3));
    let (code, _) = f
        .err(
            "StartPipelineExecution",
            json!({"name": "p", "variables": [{"name": "Nope", "value": "x"}]}),
        )
        .await;
    assert_eq!(code, "ValidationException");
    let (code, _) = f.err("GetPipelineExecution", json!({"pipelineName": "p", "pipelineExecutionId": "00000000-0000-4000-8000-000000000000"})).await;
    assert_eq!(code, "PipelineExecutionNotFoundException");
}

#[tokio::test]
async fn transitions_show_in_the_state_and_unknown_stages_are_refused() {
    let f = fixture();
    f.ok("CreatePipeline", json!({"pipeline": pipeline("p")})).await;
    let disable = json!({"pipelineName": "p", "stageName": "Approve", "transitionType": "Inbound", "reason": "freeze"});
    f.ok("DisableStageTransition", disable).await;
    let state = f.ok("GetPipelineState", json!({"name": "p"})).await;
    assert_eq!(state["stageStates"][1]["inboundTransitionState"]["enabled"], false);
    assert_eq!(state["stageStates"][1]["inboundTransitionState"]["disabledReason"], "freeze");
    assert_eq!(state["stageStates"][0]["inboundTransitionState"]["enabled"], true);
    f.ok(
        "EnableStageTransition",
        json!({"pipelineName": "p", "stageName": "Approve", "transitionType": "Inbound"}),
    )
    .await;
    let state = f.ok("GetPipelineState", json!({"name": "p"})).await;
    assert_eq!(state["stageStates"][1]["inboundTransitionState"]["enabled"], true);
    let (code, _) = f
        .err(
            "EnableStageTransition",
            json!({"pipelineName": "p", "stageName": "Nope", "transitionType": "Inbound"}),
        )
        .await;
    assert_eq!(code, "StageNotFoundException");
}

#[tokio::test]
async fn malformed_calls_get_the_protocols_errors() {
    let f = fixture();
    let reply = f.api.call("DescribeEverything", b"{}", CALLER).await;
    assert_eq!(
        (reply.status, reply.json()["__type"].as_str()),
        (400, Some("UnknownOperationException"))
    );
    let reply = f.api.call("ListPipelines", b"not json", CALLER).await;
    assert_eq!(
        (reply.status, reply.json()["__type"].as_str()),
        (400, Some("SerializationException"))
    );
    let (code, message) = f.err("GetPipeline", json!({})).await;
    assert_eq!(code, "ValidationException");
    assert!(message.contains("'name'"), "{message}");
    let types = f.ok("ListActionTypes", json!({"actionOwnerFilter": "AWS"})).await;
    let manual =
        types["actionTypes"].as_array().unwrap().iter().any(|t| t["id"]["provider"] == "Manual");
    assert!(manual);
    let none = f.ok("ListActionTypes", json!({"actionOwnerFilter": "Custom"})).await;
    assert_eq!(none["actionTypes"], json!([]));
}

#[tokio::test]
async fn handle_checks_the_signature_before_anything_else() {
    let f = fixture();
    let body = b"{}";
    let base = vec![
        ("host".to_string(), "127.0.0.1:1".to_string()),
        ("content-type".to_string(), CONTENT_TYPE.to_string()),
        ("x-amz-target".to_string(), format!("{TARGET_PREFIX}.ListPipelines")),
    ];
    let unsigned = ApiRequest { method: "POST", path: "/", query: "", headers: &base, body };
    let reply = f.api.handle(&unsigned).await;
    assert_eq!(
        (reply.status, reply.json()["__type"].as_str()),
        (403, Some("MissingAuthenticationTokenException"))
    );

    let now = SystemClock.now() / 1000;
    let sign_with = |secret: &str, access_key: &str| {
        let signable =
            sigv4::Signable { method: "POST", path: "/", query: "", headers: &base, body };
        let key = sigv4::SigningKey {
            access_key,
            secret_key: secret,
            region: "us-east-1",
            service: SIGNING_SERVICE,
        };
        let (date, auth) = sigv4::sign(&signable, &key, now);
        let mut h = base.clone();
        h.push(("x-amz-date".into(), date));
        h.push(("authorization".into(), auth));
        h
    };
    let good = sign_with("secret", "AKID");
    let reply = f.api.handle(&ApiRequest { headers: &good, ..unsigned }).await;
    assert_eq!(reply.status, 200, "{}", reply.json());
    assert_eq!(reply.json()["pipelines"], json!([]));
    let bad = sign_with("wrong", "AKID");
    let reply = f.api.handle(&ApiRequest { headers: &bad, ..unsigned }).await;
    assert_eq!(
        (reply.status, reply.json()["__type"].as_str()),
        (403, Some("InvalidSignatureException"))
    );
    let stranger = sign_with("secret", "SOMEONE");
    let reply = f.api.handle(&ApiRequest { headers: &stranger, ..unsigned }).await;
    assert_eq!(
        (reply.status, reply.json()["__type"].as_str()),
        (403, Some("UnrecognizedClientException"))
    );
}

/// The drop-in promise: every valid declaration in the project's fixtures (CodePipeline's
/// documented examples and real pipelines' shapes: connection sources, ECR, GitHub v1, custom
/// types, CodeDeploy, ECS, Lambda, Step Functions...) is created, and read back with the
/// stages it was given, whatever this host can run.
#[tokio::test]
async fn every_valid_fixture_is_created_and_read_back() {
    let f = fixture();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/declarations/valid");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 20, "{}", dir.display());
    for file in files {
        let mut doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        if doc.get("pipeline").is_none() {
            doc = json!({"pipeline": doc});
        }
        let pipeline = doc["pipeline"].clone();
        let name = pipeline["name"].as_str().unwrap().to_owned();
        let (status, body) = f.call("CreatePipeline", json!({"pipeline": pipeline})).await;
        assert_eq!(status, 200, "{}: {body}", file.display());
        let got = f.ok("GetPipeline", json!({"name": name})).await;
        assert_eq!(
            got["pipeline"]["stages"].as_array().map(Vec::len),
            pipeline["stages"].as_array().map(Vec::len),
            "{}",
            file.display()
        );
    }
}

#[tokio::test]
async fn deploy_targets_are_listed_for_an_action_execution_that_exists() {
    let f = fixture();
    f.ok("CreatePipeline", json!({"pipeline": pipeline("p")})).await;
    let started = f.ok("StartPipelineExecution", json!({"name": "p"})).await;
    let actions = f
        .ok(
            "ListActionExecutions",
            json!({"pipelineName": "p", "filter": {"pipelineExecutionId": started["pipelineExecutionId"]}}),
        )
        .await;
    let id = actions["actionExecutionDetails"][0]["actionExecutionId"].as_str().unwrap();
    // An action that deploys to no targets lists none (CodeDeploy's are tested with it).
    let found = f.ok("ListDeployActionExecutionTargets", json!({"actionExecutionId": id})).await;
    assert_eq!(found, json!({"targets": []}));
    let named = json!({"pipelineName": "p", "actionExecutionId": id});
    assert_eq!(f.ok("ListDeployActionExecutionTargets", named).await, json!({"targets": []}));
    let (code, _) =
        f.err("ListDeployActionExecutionTargets", json!({"actionExecutionId": "nope"})).await;
    assert_eq!(code, "ActionExecutionNotFoundException");
    let elsewhere = json!({"pipelineName": "other", "actionExecutionId": id});
    let (code, _) = f.err("ListDeployActionExecutionTargets", elsewhere).await;
    assert_eq!(code, "PipelineNotFoundException");
}

#[tokio::test]
async fn put_action_revision_starts_a_new_revision_once() {
    let f = fixture();
    f.ok("CreatePipeline", json!({"pipeline": pipeline("p")})).await;
    let put = |revision: &str, action: &str| {
        json!({"pipelineName": "p", "stageName": "Source", "actionName": action,
            "actionRevision": {"revisionId": revision, "revisionChangeId": revision, "created": 1.7e9}})
    };
    let first = f.ok("PutActionRevision", put("v1", "Fetch")).await;
    assert_eq!(first["newRevision"], true);
    let id = first["pipelineExecutionId"].as_str().unwrap().to_string();
    let e =
        f.ok("GetPipelineExecution", json!({"pipelineName": "p", "pipelineExecutionId": id})).await;
    assert_eq!(e["pipelineExecution"]["trigger"]["triggerType"], "PutActionRevision");
    let again = f.ok("PutActionRevision", put("v1", "Fetch")).await;
    assert_eq!(
        (again["newRevision"].clone(), again["pipelineExecutionId"].clone()),
        (json!(false), json!(id))
    );
    let next = f.ok("PutActionRevision", put("v2", "Fetch")).await;
    assert_eq!(next["newRevision"], true);
    assert_ne!(next["pipelineExecutionId"], json!(id));
    assert_eq!(f.err("PutActionRevision", put("v3", "Nope")).await.0, "ActionNotFoundException");
    let mut approval = put("v3", "Gate");
    approval["stageName"] = json!("Approve");
    assert_eq!(f.err("PutActionRevision", approval).await.0, "ValidationException");
}

/// Baton's own `GetExecutionDetail`: the execution whole with the current plan, by id, by the
/// short id the views print, or the latest; its target prefix is Baton's, never CodePipeline's.
#[tokio::test]
async fn the_execution_detail_is_found_by_id_short_id_or_latest() {
    let f = fixture();
    f.ok("CreatePipeline", json!({"pipeline": pipeline("p")})).await;
    let (code, message) = f.err("GetExecutionDetail", json!({"pipelineName": "p"})).await;
    assert_eq!(code, "PipelineExecutionNotFoundException");
    assert_eq!(message, "pipeline \"p\" has not run yet");
    let started = f.ok("StartPipelineExecution", json!({"name": "p"})).await;
    let id = started["pipelineExecutionId"].as_str().unwrap().to_owned();
    for given in [json!(id), json!(&id[..8]), Value::Null] {
        let mut input = json!({"pipelineName": "p"});
        if !given.is_null() {
            input["pipelineExecutionId"] = given.clone();
        }
        let detail = f.ok("GetExecutionDetail", input).await;
        assert_eq!(detail["execution"]["id"], json!(id), "{given}");
        assert_eq!(detail["plan"]["name"], "p");
        let e: baton::core::engine::Execution =
            serde_json::from_value(detail["execution"].clone()).unwrap();
        assert_eq!(e.trigger.trigger_detail, CALLER, "who started it is kept");
    }
    let input = json!({"pipelineName": "p", "pipelineExecutionId": "zzzz"});
    assert_eq!(f.err("GetExecutionDetail", input).await.0, "PipelineExecutionNotFoundException");
    let input = json!({"pipelineName": "nope"});
    assert_eq!(f.err("GetExecutionDetail", input).await.0, "PipelineNotFoundException");

    assert_eq!(baton::api::operation_of("Baton_20261201.GetExecutionDetail"), "GetExecutionDetail");
    assert_eq!(baton::api::operation_of("CodePipeline_20150709.GetExecutionDetail"), "");
    assert_eq!(baton::api::operation_of("Baton_20261201.ListPipelines"), "");
    assert_eq!(baton::api::operation_of("CodePipeline_20150709.ListPipelines"), "ListPipelines");
}
