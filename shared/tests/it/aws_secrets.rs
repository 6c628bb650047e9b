//! Builds' secret variables from Parameter Store and Secrets Manager on one machine with
//! `[aws]`, against moto: the values, JSON keys and versions CodeBuild would resolve, missing
//! ones named, the home's own store asked first, and a run whose commands see a secret's values
//! while its log never shows them. (An action's own `environmentVariables` take only
//! `SECRETS_MANAGER`; parameters come through CodeBuild's, which resolve the same way.)

use std::sync::Arc;

use baton::adapters::aws::aws_secrets::AwsSecrets;
use baton::adapters::local::secret_files::SecretFiles;
use baton::core::engine::ExecutionStatus;
use baton::ports::secrets::{FirstOf, SecretError, SecretKind, Secrets};

use crate::aws_support::{endpoint, sdk_config, unique};
use crate::embedded::{start_runtime_on_aws, wait_for};

/// A SecureString parameter and a JSON secret (updated once, so it has a previous version).
async fn stored() -> (String, String) {
    let config = sdk_config("us-east-1").await;
    let parameter = format!("/{}/db-password", unique("app"));
    aws_sdk_ssm::Client::new(&config)
        .put_parameter()
        .name(&parameter)
        .value("p4rameter-value")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let secret = unique("prod/db");
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    sm.create_secret()
        .name(&secret)
        .secret_string(r#"{"user": "old", "password": "0ld-secret"}"#)
        .send()
        .await
        .unwrap();
    sm.put_secret_value()
        .secret_id(&secret)
        .secret_string(r#"{"user": "app", "password": "s3cret-value", "port": 5432}"#)
        .send()
        .await
        .unwrap();
    (parameter, secret)
}

#[tokio::test]
async fn parameters_and_secrets_resolve_as_codebuild_resolves_them() {
    let (parameter, secret) = stored().await;
    let aws = AwsSecrets::new(&sdk_config("us-east-1").await);
    let resolve = |kind, reference: String| {
        let aws = aws.clone();
        async move { aws.resolve(kind, &reference).await }
    };
    assert_eq!(
        resolve(SecretKind::ParameterStore, parameter.clone()).await.unwrap(),
        "p4rameter-value"
    );
    assert_eq!(
        resolve(SecretKind::SecretsManager, format!("{secret}:password")).await.unwrap(),
        "s3cret-value"
    );
    assert_eq!(
        resolve(SecretKind::SecretsManager, format!("{secret}:port")).await.unwrap(),
        "5432"
    );
    let whole = resolve(SecretKind::SecretsManager, secret.clone()).await.unwrap();
    assert!(whole.contains("\"user\": \"app\""), "{whole}");
    assert_eq!(
        resolve(SecretKind::SecretsManager, format!("{secret}:password:AWSPREVIOUS"))
            .await
            .unwrap(),
        "0ld-secret"
    );

    let missing = |r: Result<String, SecretError>| match r {
        Err(SecretError::NotFound(why)) => why,
        other => panic!("expected NotFound, got {other:?}"),
    };
    assert_eq!(
        missing(resolve(SecretKind::ParameterStore, "/nope".into()).await),
        "no parameter named /nope in Parameter Store"
    );
    assert!(
        missing(resolve(SecretKind::SecretsManager, "nope:key".into()).await)
            .contains("no secret (or no such version of it) named nope"),
    );
    assert_eq!(
        missing(resolve(SecretKind::SecretsManager, format!("{secret}:host")).await),
        format!("the secret {secret} has no key host")
    );
}

#[tokio::test]
async fn the_homes_own_store_answers_first_and_aws_for_the_rest() {
    let (parameter, _) = stored().await;
    let home = tempfile::tempdir().unwrap();
    let files = SecretFiles::new(home.path());
    files.put(SecretKind::ParameterStore, "/local/only", "from-home").unwrap();
    let both = FirstOf(vec![
        Arc::new(files.clone()),
        Arc::new(AwsSecrets::new(&sdk_config("us-east-1").await)),
    ]);
    assert_eq!(both.resolve(SecretKind::ParameterStore, "/local/only").await.unwrap(), "from-home");
    assert_eq!(
        both.resolve(SecretKind::ParameterStore, &parameter).await.unwrap(),
        "p4rameter-value"
    );
    files.put(SecretKind::ParameterStore, &parameter, "overridden-here").unwrap();
    assert_eq!(
        both.resolve(SecretKind::ParameterStore, &parameter).await.unwrap(),
        "overridden-here"
    );
    match both.resolve(SecretKind::ParameterStore, "/in/neither").await {
        Err(SecretError::NotFound(why)) => {
            assert!(why.contains("baton secrets put /in/neither"), "{why}");
            assert!(why.contains("no parameter named /in/neither in Parameter Store"), "{why}");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn a_run_with_aws_gives_its_commands_the_values_and_keeps_them_out_of_its_log() {
    let (_, secret) = stored().await;
    let pipeline = r##"{"pipeline": {
      "name": "app", "roleArn": "arn:aws:iam::111111111111:role/pipeline", "pipelineType": "V2",
      "artifactStore": {"type": "S3", "location": "artifacts"},
      "stages": [
        {"name": "Source", "actions": [{"name": "Checkout",
          "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
          "configuration": {"RepositoryName": "app", "BranchName": "main"},
          "outputArtifacts": [{"name": "Src"}]}]},
        {"name": "Check", "actions": [{"name": "Use",
          "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
          "environmentVariables": [
            {"name": "DB_USER", "value": "@SECRET@:user", "type": "SECRETS_MANAGER"},
            {"name": "DB_SECRET", "value": "@SECRET@:password", "type": "SECRETS_MANAGER"}],
          "commands": ["test \"$DB_USER\" = app", "test \"$DB_SECRET\" = s3cret-value",
                       "echo \"password is $DB_SECRET\""],
          "inputArtifacts": [{"name": "Src"}]}]}
      ]}}"##
        .replace("@SECRET@", &secret);
    let running = start_runtime_on_aws(&endpoint().await, &pipeline).await;
    let rt = &running.rt;
    let api = rt.control_api("us-east-1", baton::api::Credentials::new());
    let reply =
        api.call("StartPipelineExecution", br#"{"name": "app"}"#, "arn:aws:iam::1:user/t").await;
    let id = reply.json()["pipelineExecutionId"].as_str().unwrap().to_owned();
    let done = wait_for(rt, &id, "ended", |e| e.status().is_ended()).await;
    assert_eq!(done.status(), ExecutionStatus::Succeeded, "{done:#?}");
    let log =
        std::fs::read_to_string(rt.home().join(format!("logs/app/{id}/Check.Use.1.log"))).unwrap();
    assert!(log.contains("password is ***"), "{log}");
    assert!(!log.contains("s3cret-value"), "{log}");
}
