//! Results of jobs handed to Lambda functions (`AWS/Invoke/Lambda`), taken by the job's id
//! alone. A function reports with stock SDK code (`PutJobSuccessResult`,
//! `PutJobFailureResult`), signed for the service `codepipeline` with the function's own role:
//! only AWS can check such a signature, so on a deployment the result is taken on the trigger
//! function's open URL, and the job's id, 122 random bits handed to that function alone, is
//! what proves the caller. Nothing else is answered there: no other operation, and no job but
//! an open one handed to a function.

use serde::Deserialize;

use super::{ApiError, ApiReply, ControlApi, Ctx, operation_of};
use baton_app::service::JobClient;

/// The operations a function reports its job with.
const REPORTS: [&str; 2] = ["PutJobSuccessResult", "PutJobFailureResult"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reported {
    job_id: String,
}

impl ControlApi {
    /// Takes a function's report on its job: `target` is the request's `X-Amz-Target`, `body`
    /// its JSON. Any signature is ignored; see the module's documentation for why.
    pub async fn job_report(&self, target: &str, body: &[u8]) -> ApiReply {
        let operation = operation_of(target);
        if !REPORTS.contains(&operation) {
            return ApiError::new(
                "AccessDeniedException",
                "Only a Lambda function's PutJobSuccessResult and PutJobFailureResult are taken here; call the API for anything else",
            )
            .reply();
        }
        let Ok(Reported { job_id }) = serde_json::from_slice::<Reported>(body) else {
            return ApiError::validation("The report names no jobId").reply();
        };
        let handed_to_a_function = match self.jobs.as_deref() {
            Some(desk) => desk
                .details(&job_id, JobClient::Worker)
                .await
                .is_ok_and(|job| job.handed_over && job.status.is_open()),
            None => false,
        };
        if !handed_to_a_function {
            // Not said apart from a job that does not exist: the id is the only secret here.
            return ApiError::new(
                "JobNotFoundException",
                "The job was specified in an invalid format or cannot be found.",
            )
            .reply();
        }
        // Straight to the two operations, not through `call`: the trigger function, which
        // takes these reports, then links them alone and not the whole API.
        let input = match super::wire::parse_body(body) {
            Ok(v) => v,
            Err(e) => return e.reply(),
        };
        let caller = format!("job/{job_id}");
        let ctx = Ctx { api: self, caller: &caller };
        let result = if operation == REPORTS[0] {
            ctx.put_job_success_result(input).await
        } else {
            ctx.put_job_failure_result(input).await
        };
        super::reply(result)
    }
}
