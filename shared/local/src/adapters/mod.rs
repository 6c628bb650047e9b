//! The ports on one machine: an embedded database, encrypted files, an in-process bus.

pub mod console_notifier;
pub mod file_artifacts;
pub mod group_commit;
pub mod job_grants;
pub mod local_bus;
pub mod memory_claims;
pub mod secret_files;
pub mod smtp_notifier;
pub mod sql_approvals;
pub mod sql_job_queue;
pub mod sql_jobs;
pub mod sql_state;
pub mod sql_webhooks;
mod sqlite;
