//! A name or id the user typed that is not there: one sentence naming the ones that are.

use crate::output::setup;
use crate::run::baton;

#[test]
fn a_stage_or_execution_that_is_not_there_is_named_with_the_ones_that_are() {
    let home = tempfile::tempdir().unwrap();
    let pipeline = setup(home.path());
    let ran = baton(home.path()).arg("run").arg(&pipeline).output().unwrap();
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    let refused = |args: &[&str]| {
        let o = baton(home.path()).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let said = String::from_utf8_lossy(&o.stderr).trim().to_owned();
        assert_eq!(said.lines().count(), 1, "one sentence: {said}");
        said
    };
    let said = refused(&["disable-transition", "app", "Buld", "--reason", "freeze"]);
    assert!(said.contains("no stage \"Buld\": the nearest are \"Build\""), "{said}");
    let listed = baton(home.path()).args(["--output", "json", "history", "app"]).output().unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let id = listed["pipelineExecutionSummaries"][0]["pipelineExecutionId"].as_str().unwrap();
    for command in ["status", "logs", "stop"] {
        let said = refused(&[command, "app", "deadbeef"]);
        let latest = format!("its only one is {} (Succeeded)", &id[..8]);
        assert!(
            said.contains("no execution deadbeef") && said.ends_with(&latest),
            "{command}: {said}"
        );
    }
}
