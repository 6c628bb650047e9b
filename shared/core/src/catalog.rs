//! What CodePipeline knows about each action provider: default timeouts (and, as validation
//! grows, artifact counts, required configuration keys and V2-only providers).

/// The default timeout of an action of this category and provider, in minutes, as CodePipeline's
/// quotas page gives it. Manual approval: 7 days.
pub fn default_timeout_minutes(category: &str, provider: &str) -> u32 {
    match (category, provider) {
        ("Approval", "Manual") => 7 * 24 * 60,
        ("Deploy", "CloudFormation") => 3 * 24 * 60,
        ("Deploy", "CodeDeploy" | "CodeDeployToECS") => 5 * 24 * 60,
        ("Invoke", "Lambda") => 24 * 60,
        ("Deploy", "S3") => 90,
        ("Compute", "Commands") => 55,
        _ => 60,
    }
}
