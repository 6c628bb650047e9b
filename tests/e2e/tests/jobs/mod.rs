//! A custom action's job, taken by a job worker through the API function, and a pipeline that
//! invokes another: with IAM enforced, as the roles `template.yaml` declares.

use std::time::{Duration, Instant};

use baton_e2e::scenario::{Release, pipeline_role, s3_client};
use baton_e2e::stack::{AccountKeys, HOME};
use baton_e2e::{FaultPlan, Harness};
use serde_json::{Value, json};

use crate::{assert_needed_here, assert_no_call_refused};

/// This scenario's test, for [`crate::EXERCISED_ELSEWHERE`].
pub(crate) const JOBS: &str = "jobs::a_job_worker_and_an_invoked_pipeline_work_as_their_roles";

const WORKER_TYPE: &str = "E2EWorker";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_worker_and_an_invoked_pipeline_work_as_their_roles() {
    let h = Harness::start(1, FaultPlan::default()).await.unwrap();
    let release = Release::new(&h.stack, "jobs");
    release.prepare(&h.stack, &release.project).await.unwrap();
    let key = "jobs/source.zip";
    let sdk = h.stack.sdk(HOME).await;
    let s3 = s3_client(&sdk);
    let put = s3.put_object().bucket(&release.source_bucket).key(key).body(zipped().into());
    put.send().await.unwrap();
    // Pipeline A's own store (DeclaredArtifactBuckets), encrypted with a key of its own.
    let declared = format!("codepipeline-us-east-1-{}", h.stack.name);
    s3.create_bucket().bucket(&declared).send().await.unwrap();
    let own_key = aws_sdk_kms::Client::new(&sdk).create_key().send().await.unwrap();
    let own_key = own_key.key_metadata.unwrap().arn.unwrap();
    // A function A's job is handed to (moto keeps it without Docker, and never runs it).
    let moto = &h.iam.as_ref().unwrap().moto;
    moto.configure(&json!({"lambda": {"use_docker": false}})).await.unwrap();
    let function = format!("{}-notify", h.stack.name);
    baton_e2e::scenario::function(&sdk, &function, zipped()).await.unwrap();
    h.enforce().await.unwrap();
    let user = h.api_user("arn:aws:sts::111111111111:assumed-role/release-engineer/jobs-e2e");
    let user = user.await.unwrap();
    let api = async |operation: &str, body: Value| user.ok(operation, body).await.unwrap();

    // The job worker's action type, and a pipeline B, in the stack's store, whose build is the
    // job worker's and which runs once by hand (its lanes exist when A invokes it).
    api(
        "CreateCustomActionType",
        json!({"category": "Build", "provider": WORKER_TYPE, "version": "1",
            "inputArtifactDetails": {"minimumCount": 1, "maximumCount": 1},
            "outputArtifactDetails": {"minimumCount": 1, "maximumCount": 1}}),
    )
    .await;
    let source = json!({"name": "Source", "actions": [{"name": "Upload",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
        "configuration": {"S3Bucket": release.source_bucket, "S3ObjectKey": key,
            "PollForSourceChanges": "false"},
        "outputArtifacts": [{"name": "SourceOutput"}]}]});
    let built = json!({"name": "Build", "actions": [{"name": "Work",
        "actionTypeId": {"category": "Build", "owner": "Custom", "provider": WORKER_TYPE, "version": "1"},
        "inputArtifacts": [{"name": "SourceOutput"}], "outputArtifacts": [{"name": "Built"}]}]});
    let invoked = format!("{}-invoked", release.pipeline);
    let invoking = format!("{}-invoking", release.pipeline);
    let store = json!({"type": "S3", "location": h.stack.buckets[HOME]});
    api(
        "CreatePipeline",
        json!({"pipeline": {"name": invoked, "roleArn": pipeline_role(&h.stack),
            "artifactStore": store, "stages": [source, built]}}),
    )
    .await;
    api("StartPipelineExecution", json!({"name": invoked})).await;

    // Pipeline A, in its own store under its own key: the source, the job worker's build, then
    // B invoked beside a function's job.
    let invoke = json!({"name": "Invoke", "actions": [{"name": "Next",
        "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "CodePipeline", "version": "1"},
        "configuration": {"PipelineName": invoked}},
        {"name": "Notify",
        "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"},
        "configuration": {"FunctionName": function}}]});
    api(
        "CreatePipeline",
        json!({"pipeline": {"name": invoking, "roleArn": pipeline_role(&h.stack),
            "artifactStore": {"type": "S3", "location": declared,
                "encryptionKey": {"id": own_key, "type": "KMS"}},
            "stages": [source, built, invoke]}}),
    )
    .await;
    let started = api("StartPipelineExecution", json!({"name": invoking})).await;
    let execution = started["pipelineExecutionId"].as_str().unwrap().to_owned();

    // The job worker takes B's job and A's: polls, acknowledges, reads its input and writes its
    // output (under the key the job names) with the credentials the job lends, reports success.
    let type_id =
        json!({"category": "Build", "owner": "Custom", "provider": WORKER_TYPE, "version": "1"});
    let through = h.proxy.listen("job-worker").await.unwrap();
    let mut written_to = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while written_to.len() < 2 {
        let polled = api("PollForJobs", json!({"actionTypeId": type_id, "maxBatchSize": 1})).await;
        let Some(job) = polled["jobs"].as_array().and_then(|j| j.first()) else {
            if Instant::now() > deadline {
                let state = api("GetPipelineState", json!({"name": invoking})).await;
                panic!(
                    "jobs for {WORKER_TYPE} written to {written_to:?} within 30 s: {state}\nrefused: {:?}\n{}",
                    h.denied_calls(),
                    crate::diagnostics(&h).await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let (bucket, key) = work(&h, &through, job).await;
        api("PutJobSuccessResult", json!({"jobId": job["id"]})).await;
        written_to.insert(bucket, key);
    }
    let stack_key = h.stack.keys_by_region[HOME].as_str();
    let expected = [(h.stack.buckets[HOME].as_str(), stack_key), (declared.as_str(), &own_key)];
    let written: Vec<(&str, &str)> =
        written_to.iter().map(|(b, k)| (b.as_str(), k.as_str())).collect();
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(written, expected, "each job's output goes to its pipeline's store, under its key");

    // The function reports its job as its SDK sends it, to the trigger's URL.
    let job_id = handed_to(&h, &function).await;
    let report = h.pool("trigger").unwrap().invoke(job_report(&job_id)).await.unwrap().unwrap();
    assert_eq!(report["statusCode"], 200, "{report}");

    // A ends once B was started by its invoke action and the function reported.
    let patience = Duration::from_secs(60);
    let status = user.end_of(&invoking, &execution, patience, async || {}).await.unwrap();
    assert_eq!(status, "Succeeded", "{}", crate::diagnostics(&h).await);
    let runs = api("ListPipelineExecutions", json!({"pipelineName": invoked})).await;
    let runs = runs["pipelineExecutionSummaries"].as_array().map_or(0, Vec::len);
    assert_eq!(runs, 2, "B ran once by hand and once invoked by A");

    assert_no_call_refused(&h);
    assert_needed_here(&h, JOBS);
}

/// Acknowledges `job`, reads its input and writes it as its output with the credentials it
/// lends (through the proxy, as `job-worker`), under the key it names; gives the output's bucket
/// and key.
async fn work(h: &Harness, through: &str, job: &Value) -> (String, String) {
    let user = h.api_user("arn:aws:sts::111111111111:assumed-role/job-worker/jobs-e2e");
    let user = user.await.unwrap();
    user.ok("AcknowledgeJob", json!({"jobId": job["id"], "nonce": job["nonce"]})).await.unwrap();
    let data = &job["data"];
    let lent = &data["artifactCredentials"];
    let lent = AccountKeys {
        access_key: lent["accessKeyId"].as_str().unwrap().to_owned(),
        secret_key: lent["secretAccessKey"].as_str().unwrap().to_owned(),
        session_token: lent["sessionToken"].as_str().unwrap().to_owned(),
    };
    let as_job = s3_client(&lent.sdk(through, HOME).await);
    let at = |artifact: &Value| {
        let l = &artifact["location"]["s3Location"];
        (l["bucketName"].as_str().unwrap().to_owned(), l["objectKey"].as_str().unwrap().to_owned())
    };
    let (bucket, object) = at(&data["inputArtifacts"][0]);
    let input = as_job.get_object().bucket(bucket).key(object).send().await.unwrap();
    let input = input.body.collect().await.unwrap().into_bytes();
    let (bucket, object) = at(&data["outputArtifacts"][0]);
    let key = data["encryptionKey"]["id"].as_str().expect("the job names its key").to_owned();
    as_job
        .put_object()
        .bucket(&bucket)
        .key(object)
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .ssekms_key_id(&key)
        .body(input.to_vec().into())
        .send()
        .await
        .unwrap();
    (bucket, key)
}

/// The id of the job handed to `function` (by `Invoke`, which the proxy saw).
pub(crate) async fn handed_to(h: &Harness, function: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let invoked = h.proxy.calls().into_iter().find_map(|c| {
            let job = &c.request.as_ref()?["CodePipeline.job"];
            let to = job["data"]["actionConfiguration"]["configuration"]["FunctionName"].as_str();
            (c.operation == "Invoke" && c.status < 300 && to == Some(function))
                .then(|| job["id"].as_str().map(str::to_owned))
                .flatten()
        });
        if let Some(id) = invoked {
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "no job handed to {function}: {}",
            crate::diagnostics(h).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `PutJobSuccessResult` for `job_id`, as a function URL delivers the SDK's request.
pub(crate) fn job_report(job_id: &str) -> Value {
    let body = json!({"jobId": job_id, "executionDetails": {"summary": "notified"}}).to_string();
    let headers = json!({"content-type": "application/x-amz-json-1.1",
        "x-amz-target": "CodePipeline_20150709.PutJobSuccessResult"});
    crate::trigger_url_post("/", headers, body)
}

/// A one-file zip.
pub(crate) fn zipped() -> Vec<u8> {
    use std::io::Write as _;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("README", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(b"built by the job worker\n").unwrap();
    zip.finish().unwrap().into_inner()
}
