//! The declaration as CodePipeline prints it back: what `CreatePipeline`, `UpdatePipeline` and
//! `GetPipeline` answer. Fields given are kept as given (empty lists and maps included); the
//! fields CodePipeline fills when they are left out are filled here, in one place, so a drift
//! check (Terraform, CDK, a script comparing `get-pipeline` with its input) sees what it would
//! see against AWS.

use super::model::PipelineDeclaration;

/// What CodePipeline fills in a declaration it stores:
/// - `executionMode`: `SUPERSEDED`, its default;
/// - `pipelineType`: `V2`, its default for pipelines created since 9 December 2024;
/// - each action's `runOrder` (1), `inputArtifacts` and `outputArtifacts` (empty lists), as
///   `get-pipeline`'s documented output shows them.
///
/// `version` is the service's and is set by whoever stores the declaration.
pub fn fill_as_codepipeline_does(pipeline: &mut PipelineDeclaration) {
    pipeline.execution_mode.get_or_insert_with(|| "SUPERSEDED".to_owned());
    pipeline.pipeline_type.get_or_insert_with(|| "V2".to_owned());
    for action in pipeline.stages.iter_mut().flat_map(|s| s.actions.iter_mut()) {
        action.run_order.get_or_insert(1);
        action.input_artifacts.get_or_insert_with(Vec::new);
        action.output_artifacts.get_or_insert_with(Vec::new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declaration::PipelineDocument;

    #[test]
    fn left_out_fields_are_filled_and_given_ones_kept() {
        let doc = PipelineDocument::parse(
            r#"{"name": "p", "roleArn": "arn:aws:iam::111111111111:role/r", "pipelineType": "V1",
              "artifactStore": {"type": "S3", "location": "b"},
              "stages": [{"name": "S", "actions": [
                {"name": "A", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                 "runOrder": 2, "configuration": {}, "outputArtifacts": [{"name": "Out"}]},
                {"name": "B", "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]}]}"#,
        )
        .unwrap();
        let mut p = doc.pipeline;
        fill_as_codepipeline_does(&mut p);
        assert_eq!(p.execution_mode.as_deref(), Some("SUPERSEDED"));
        assert_eq!(p.pipeline_type.as_deref(), Some("V1"), "given, kept");
        let [a, b] = &p.stages[0].actions[..] else { panic!("two actions") };
        assert_eq!((a.run_order, b.run_order), (Some(2), Some(1)));
        assert_eq!(a.configuration.as_ref().map(|c| c.len()), Some(0), "an empty map is kept");
        assert_eq!(a.input_artifacts.as_deref(), Some(&[][..]));
        assert_eq!(a.output_artifacts.as_ref().map(Vec::len), Some(1));
        assert_eq!(b.output_artifacts.as_deref(), Some(&[][..]));
        assert_eq!(b.configuration, None, "configuration is not invented");
        let once = p.clone();
        fill_as_codepipeline_does(&mut p);
        assert_eq!(p, once, "filling twice changes nothing");
    }
}
