//! Rules the fixture files do not exercise, checked on small variations of one valid pipeline.

use serde_json::{Value, json};

use super::validate;
use crate::declaration::model::PipelineDeclaration;

const ROLE: &str = "arn:aws:iam::111122223333:role/PipelineRole";

fn source() -> Value {
    json!({
        "name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
        "configuration": {"RepositoryName": "app", "BranchName": "main"},
        "outputArtifacts": [{"name": "Src"}],
        "namespace": "SourceVariables"
    })
}

fn build(name: &str) -> Value {
    json!({
        "name": name,
        "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "configuration": {"ProjectName": "app"},
        "inputArtifacts": [{"name": "Src"}]
    })
}

fn pipeline() -> Value {
    json!({
        "name": "app",
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": "artifacts-bucket"},
        "stages": [
            {"name": "Source", "actions": [source()]},
            {"name": "Build", "actions": [build("Compile")]}
        ]
    })
}

/// The error lines for `pipeline()` after `change`, validated in us-east-1.
fn errors_after(change: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut value = pipeline();
    change(&mut value);
    let declaration: PipelineDeclaration = serde_json::from_value(value).expect("model shape");
    validate(&declaration, "us-east-1").iter().map(ToString::to_string).collect()
}

fn action(value: &mut Value, stage: usize, action: usize) -> &mut Value {
    &mut value["stages"][stage]["actions"][action]
}

fn stage(value: &mut Value, stage: usize) -> &mut Value {
    &mut value["stages"][stage]
}

#[test]
fn the_base_pipeline_is_valid() {
    assert_eq!(errors_after(|_| {}), Vec::<String>::new());
}

#[test]
fn errors_come_in_document_order() {
    let errors = errors_after(|p| {
        p["name"] = json!("my app");
        action(p, 1, 0)["runOrder"] = json!(1000);
        p["pipelineType"] = json!("V9");
    });
    assert_eq!(
        errors,
        [
            "pipeline: pipeline name \"my app\" may only contain letters, digits, \".\", \"@\", \"-\" and \"_\"",
            "stage \"Build\", action \"Compile\": runOrder must be between 1 and 999, not 1000",
            "pipeline: pipelineType must be V1 or V2, not \"V9\"",
        ]
    );
}

#[test]
fn a_first_stage_without_source_reports_the_stage_and_each_action() {
    let errors = errors_after(|p| {
        let mut compile = build("Early");
        compile["inputArtifacts"] = json!([]);
        compile["actionTypeId"]["provider"] = json!("JenkinsProvider");
        compile["actionTypeId"]["owner"] = json!("Custom");
        *stage(p, 0) = json!({"name": "Source", "actions": [compile]});
        stage(p, 1)["actions"] = json!([build("Compile")]);
    });
    assert_eq!(
        errors,
        [
            "stage \"Source\": the first stage must contain at least one source action",
            "stage \"Source\", action \"Early\": the first stage may only contain source actions, not a Build action",
            "stage \"Build\", action \"Compile\": input artifact \"Src\" is not produced by an earlier action",
        ]
    );
}

#[test]
fn a_pipeline_of_source_actions_only_is_refused() {
    let errors = errors_after(|p| {
        let mut second = source();
        second["name"] = json!("Again");
        second["outputArtifacts"] = json!([{"name": "Other"}]);
        second["namespace"] = json!("Other2");
        stage(p, 1)["actions"] = json!([second]);
    });
    assert_eq!(
        errors,
        [
            "stage \"Build\", action \"Again\": source actions are only allowed in the first stage",
            "pipeline: a pipeline needs at least one action that is not a source action",
        ]
    );
}

#[test]
fn stage_and_pipeline_action_quotas() {
    let empty = errors_after(|p| stage(p, 1)["actions"] = json!([]));
    assert_eq!(
        empty,
        [
            "stage \"Build\": a stage must have 1 to 50 actions, not 0",
            "pipeline: a pipeline needs at least one action that is not a source action",
        ]
    );

    let actions: Vec<Value> = (0..51).map(|i| build(&format!("B{i}"))).collect();
    let wide = errors_after(|p| stage(p, 1)["actions"] = json!(actions));
    assert_eq!(wide, ["stage \"Build\": a stage must have 1 to 50 actions, not 51"]);

    let too_many = errors_after(|p| {
        for s in 0..10 {
            let actions: Vec<Value> = (0..50).map(|i| build(&format!("B{i}"))).collect();
            p["stages"]
                .as_array_mut()
                .expect("stages")
                .push(json!({"name": format!("S{s}"), "actions": actions}));
        }
    });
    assert_eq!(too_many, ["pipeline: a pipeline must have at most 500 actions, not 502"]);
}

#[test]
fn an_absent_pipeline_type_allows_v2_features() {
    let errors = errors_after(|p| {
        p["executionMode"] = json!("PARALLEL");
        p["variables"] = json!([{"name": "Stage"}]);
        *action(p, 1, 0) = json!({
            "name": "Compile",
            "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
            "commands": ["echo #{variables.Stage}"],
            "inputArtifacts": [{"name": "Src"}]
        });
    });
    assert_eq!(errors, Vec::<String>::new());
}

#[test]
fn the_commands_provider_needs_commands_within_limits() {
    let commands = |commands: Value| {
        errors_after(|p| {
            let a = action(p, 1, 0);
            a["actionTypeId"] = json!({"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"});
            a.as_object_mut().expect("action").remove("configuration");
            if !commands.is_null() {
                a["commands"] = commands;
            }
        })
    };
    let at = "stage \"Build\", action \"Compile\": ";
    assert_eq!(commands(Value::Null), [format!("{at}the Commands provider requires commands")]);
    assert_eq!(commands(json!([])), [format!("{at}commands must have 1 to 50 entries, not 0")]);
    let many: Vec<String> = (0..51).map(|i| format!("echo {i}")).collect();
    assert_eq!(commands(json!(many)), [format!("{at}commands must have 1 to 50 entries, not 51")]);
    let long = "x".repeat(1001);
    assert_eq!(
        commands(json!([long])),
        [format!("{at}command 1 must be at most 1000 characters long, not 1001")]
    );
}

#[test]
fn output_and_environment_variable_limits() {
    let errors = errors_after(|p| {
        let a = action(p, 1, 0);
        a["outputVariables"] = json!([]);
        a["environmentVariables"] = json!([{"name": "BAD-NAME", "value": ""}]);
    });
    let at = "stage \"Build\", action \"Compile\": ";
    assert_eq!(
        errors,
        [
            format!("{at}outputVariables must have 1 to 15 entries, not 0"),
            format!(
                "{at}environment variable name \"BAD-NAME\" may only contain letters, digits and \"_\""
            ),
            format!("{at}environment variable \"BAD-NAME\" value must not be empty"),
        ]
    );
}

#[test]
fn configuration_size_and_value_limits() {
    let errors = errors_after(|p| {
        let config = action(p, 1, 0)["configuration"].as_object_mut().expect("configuration");
        for i in 0..200 {
            config.insert(format!("Key{i}"), json!("v"));
        }
        config.insert("ProjectName".into(), json!("p".repeat(1001)));
    });
    let at = "stage \"Build\", action \"Compile\": ";
    assert_eq!(
        errors,
        [
            format!("{at}configuration must have at most 200 entries, not 201"),
            format!(
                "{at}configuration \"ProjectName\" value must be at most 1000 characters long, not 1001"
            ),
        ]
    );
}

#[test]
fn artifact_lists_must_not_repeat_a_name() {
    let errors = errors_after(|p| {
        action(p, 0, 0)["outputArtifacts"] = json!([{"name": "Src"}, {"name": "Src"}]);
        action(p, 1, 0)["inputArtifacts"] = json!([{"name": "Src"}, {"name": "Src"}]);
        action(p, 1, 0)["configuration"]["PrimarySource"] = json!("Src");
    });
    assert_eq!(
        errors,
        [
            "stage \"Source\", action \"Source\": output artifact \"Src\" is listed more than once",
            "stage \"Source\", action \"Source\": CodeCommit produces exactly 1 output artifact, not 2",
            "stage \"Build\", action \"Compile\": input artifact \"Src\" is listed more than once",
        ]
    );
}

#[test]
fn partner_and_custom_providers_are_accepted_by_any_well_formed_name() {
    let accepted = errors_after(|p| {
        action(p, 1, 0)["actionTypeId"] = json!({"category": "Test", "owner": "ThirdParty", "provider": "GhostInspector", "version": "1"});
    });
    assert_eq!(accepted, Vec::<String>::new());
    let malformed = errors_after(|p| {
        action(p, 1, 0)["actionTypeId"] = json!({"category": "Build", "owner": "AWS", "provider": "Code Build", "version": "1.0"});
    });
    assert_eq!(
        malformed,
        [
            "stage \"Build\", action \"Compile\": provider \"Code Build\" may only contain letters, digits, \"-\" and \"_\"",
            "stage \"Build\", action \"Compile\": version \"1.0\" may only contain letters, digits, \"-\" and \"_\"",
        ]
    );
    let owner = errors_after(|p| action(p, 1, 0)["actionTypeId"]["owner"] = json!("Amazon"));
    assert_eq!(
        owner,
        [
            "stage \"Build\", action \"Compile\": owner must be AWS, ThirdParty or Custom, not \"Amazon\""
        ]
    );
}

#[test]
fn regions_of_partner_actions_and_the_home_region() {
    let home = errors_after(|p| action(p, 0, 0)["region"] = json!("us-east-1"));
    assert_eq!(home, Vec::<String>::new());
    let custom = errors_after(|p| {
        action(p, 1, 0)["actionTypeId"]["owner"] = json!("Custom");
        action(p, 1, 0)["region"] = json!("eu-west-1");
    });
    assert_eq!(
        custom,
        ["stage \"Build\", action \"Compile\": Custom actions cannot run in another region"]
    );
    let short = errors_after(|p| {
        p["artifactStores"] =
            json!({"us-east-1": p["artifactStore"].clone(), "eu": p["artifactStore"].clone()});
        p.as_object_mut().expect("pipeline").remove("artifactStore");
    });
    assert_eq!(
        short,
        ["pipeline: artifactStores region \"eu\" must be 4 to 30 characters long, not 2"]
    );
}

#[test]
fn store_and_key_fields() {
    let errors = errors_after(|p| {
        p["artifactStore"] =
            json!({"type": "GCS", "location": "ab", "encryptionKey": {"id": "", "type": "KMS"}});
    });
    assert_eq!(
        errors,
        [
            "pipeline: artifactStore type must be S3, not \"GCS\"",
            "pipeline: artifactStore location must be 3 to 63 characters long, not 2",
            "pipeline: artifactStore encryptionKey id must not be empty",
        ]
    );
}

#[test]
fn pipeline_variable_limits() {
    let many: Vec<Value> = (0..51).map(|i| json!({"name": format!("v{i}")})).collect();
    assert_eq!(
        errors_after(|p| p["variables"] = json!(many)),
        ["pipeline: a pipeline must have at most 50 variables, not 51"]
    );
    let errors = errors_after(|p| {
        p["variables"] =
            json!([{"name": "a.b", "defaultValue": "", "description": "d".repeat(201)}]);
    });
    assert_eq!(
        errors,
        [
            "pipeline: variable name \"a.b\" may only contain letters, digits, \"@\", \"-\" and \"_\"",
            "pipeline: variable \"a.b\" defaultValue must not be empty",
            "pipeline: variable \"a.b\" description must be at most 200 characters long, not 201",
        ]
    );
}

#[test]
fn version_must_be_positive() {
    assert_eq!(
        errors_after(|p| p["version"] = json!(0)),
        ["pipeline: version must be at least 1, not 0"]
    );
}

fn with_trigger(git: Value) -> Vec<String> {
    errors_after(|p| {
        *action(p, 0, 0) = json!({
            "name": "Source",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"},
            "configuration": {"ConnectionArn": "arn:aws:codestar-connections:us-east-1:111122223333:connection/x",
                              "FullRepositoryId": "org/app", "BranchName": "main"},
            "outputArtifacts": [{"name": "Src"}]
        });
        p["triggers"] =
            json!([{"providerType": "CodeStarSourceConnection", "gitConfiguration": git}]);
    })
}

#[test]
fn trigger_filters_keep_to_their_fields() {
    let errors = with_trigger(json!({
        "sourceActionName": "Source",
        "push": [{"events": ["OPEN"], "branches": {"excludes": ["b".repeat(256)]}}],
        "pullRequest": [{"events": [], "tags": {"includes": ["v*"]}}]
    }));
    let at = "pipeline: trigger for source action \"Source\": ";
    assert_eq!(
        errors,
        [
            format!("{at}push filter 1 cannot filter on events"),
            format!(
                "{at}push filter 1 branches excludes pattern must be at most 255 characters long, not 256"
            ),
            format!("{at}pullRequest filter 1 events must have 1 to 3 entries, not 0"),
            format!("{at}pullRequest filter 1 cannot filter on tags"),
        ]
    );
    assert_eq!(
        with_trigger(
            json!({"sourceActionName": "Source", "pullRequest": [{"events": ["CLOSED"]}]})
        ),
        Vec::<String>::new()
    );
}

#[test]
fn trigger_provider_type_and_quota() {
    let errors = errors_after(|p| {
        p["triggers"] =
            json!([{"providerType": "GitHub", "gitConfiguration": {"sourceActionName": "Source"}}]);
    });
    assert_eq!(
        errors,
        [
            "pipeline: trigger for source action \"Source\": providerType must be CodeStarSourceConnection, not \"GitHub\"",
            "pipeline: trigger for source action \"Source\": the source action's provider is CodeCommit, not CodeStarSourceConnection",
        ]
    );
}

fn condition(result: &str, rule: Value) -> Value {
    json!({"conditions": [{"result": result, "rules": [rule]}]})
}

fn rule(provider: &str, config: Value) -> Value {
    json!({"name": "Check", "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": provider, "version": "1"}, "configuration": config})
}

#[test]
fn rule_type_fields_and_required_keys() {
    let errors = errors_after(|p| {
        let mut r =
            rule("VariableCheck", json!({"Variable": "#{SourceVariables.CommitId}", "Value": "x"}));
        r["ruleTypeId"]["category"] = json!("Action");
        r["ruleTypeId"]["owner"] = json!("Custom");
        stage(p, 1)["beforeEntry"] = condition("FAIL", r);
    });
    let at = "stage \"Build\": beforeEntry rule \"Check\": ";
    assert_eq!(
        errors,
        [
            format!("{at}category must be Rule, not \"Action\""),
            format!("{at}owner must be AWS, not \"Custom\""),
            format!("{at}VariableCheck requires configuration key \"Operator\""),
        ]
    );
}

#[test]
fn rule_commands_belong_to_the_commands_rule() {
    let errors = errors_after(|p| {
        let mut lambda = rule("LambdaInvoke", json!({"FunctionName": "f"}));
        lambda["commands"] = json!(["true"]);
        stage(p, 1)["onSuccess"] = condition("FAIL", lambda);
        stage(p, 1)["onFailure"] = json!({"result": "ROLLBACK", "conditions": [{"result": "ROLLBACK", "rules": [
            {"name": "Cmd", "ruleTypeId": {"category": "Rule", "provider": "Commands"}}
        ]}]});
    });
    assert_eq!(
        errors,
        [
            "stage \"Build\": onFailure rule \"Cmd\": the Commands provider requires commands",
            "stage \"Build\": onSuccess rule \"Check\": commands are only allowed on the Commands provider",
        ]
    );
}

#[test]
fn conditions_see_what_ran_before_them() {
    let reference = || {
        rule(
            "LambdaInvoke",
            json!({"FunctionName": "f", "UserParameters": "#{BuildVariables.Out}"}),
        )
    };
    let exit = errors_after(|p| {
        action(p, 1, 0)["namespace"] = json!("BuildVariables");
        stage(p, 1)["onSuccess"] = condition("ROLLBACK", reference());
    });
    assert_eq!(exit, Vec::<String>::new());
    let entry = errors_after(|p| {
        action(p, 1, 0)["namespace"] = json!("BuildVariables");
        let mut r = reference();
        r["inputArtifacts"] = json!([{"name": "Src"}, {"name": "Later"}]);
        stage(p, 1)["beforeEntry"] = condition("SKIP", r);
    });
    let at = "stage \"Build\": beforeEntry rule \"Check\": ";
    assert_eq!(
        entry,
        [
            format!(
                "{at}configuration \"UserParameters\": \"#{{BuildVariables.Out}}\" refers to namespace \"BuildVariables\", which no action that runs earlier declares"
            ),
            format!("{at}input artifact \"Later\" is not produced by an earlier action"),
        ]
    );
}

#[test]
fn condition_lists_and_rule_counts() {
    let errors = errors_after(|p| {
        stage(p, 1)["beforeEntry"] = json!({"conditions": []});
        stage(p, 1)["onSuccess"] = json!({"conditions": [{"result": "SKIP", "rules": []}]});
    });
    assert_eq!(
        errors,
        [
            "stage \"Build\": onSuccess result must be ROLLBACK or FAIL, not \"SKIP\"",
            "stage \"Build\": the onSuccess condition must have 1 to 5 rules, not 0",
            "stage \"Build\": beforeEntry must have exactly 1 condition, not 0",
        ]
    );
}

#[test]
fn on_failure_accepts_every_model_result() {
    for result in ["ROLLBACK", "FAIL", "RETRY", "SKIP"] {
        let errors = errors_after(|p| stage(p, 1)["onFailure"] = json!({"result": result}));
        assert_eq!(errors, Vec::<String>::new(), "{result}");
    }
    let errors = errors_after(|p| stage(p, 1)["onFailure"] = json!({"result": "CONTINUE"}));
    assert_eq!(
        errors,
        [
            "stage \"Build\": onFailure result must be ROLLBACK, FAIL, RETRY or SKIP, not \"CONTINUE\""
        ]
    );
}

#[test]
fn v1_refuses_each_v2_feature_once() {
    let errors = errors_after(|p| {
        p["pipelineType"] = json!("V1");
        p["executionMode"] = json!("PARALLEL");
        stage(p, 1)["beforeEntry"] =
            condition("FAIL", rule("LambdaInvoke", json!({"FunctionName": "f"})));
        action(p, 1, 0)["actionTypeId"] =
            json!({"category": "Deploy", "owner": "AWS", "provider": "EKS", "version": "1"});
        action(p, 1, 0)["configuration"] = json!({"ClusterName": "c"});
    });
    assert_eq!(
        errors,
        [
            "stage \"Build\", action \"Compile\": provider \"EKS\" requires pipelineType V2",
            "stage \"Build\": beforeEntry requires pipelineType V2",
            "pipeline: executionMode PARALLEL requires pipelineType V2",
        ]
    );
}
