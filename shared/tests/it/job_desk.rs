//! The job desk over both queues (SQLite, and DynamoDB on moto): what CodePipeline's job
//! protocol promises workers that the end-to-end worker scenario cannot force (two polls
//! racing, reports out of turn, type definitions changing under a version).

use std::collections::BTreeMap;
use std::sync::Arc;

use baton::adapters::aws::dynamodb_state::{DynamoDbStateStore, create_table};
use baton::adapters::local::sql_state::SqlStateStore;
use baton::ports::clock::SystemClock;
use baton::ports::job_queue::{
    ActionType, ArtifactCount, CustomActionType, JobQueue, JobReport, JobStatus, QueuedJob,
};
use baton::ports::jobs::{RunningJob, RunningJobs};
use baton::ports::state::{StoreError, Versioned};

use crate::aws_support::{sdk_config, unique};
use baton::service::JobClient::{Partner, Worker};
use baton::service::{CUSTOM, DeskError, JobDesk, THIRD_PARTY};
use serde_json::json;

fn type_id() -> ActionType {
    ActionType {
        category: "Build".into(),
        owner: "Custom".into(),
        provider: "Jenkins".into(),
        version: "1".into(),
    }
}

fn definition() -> CustomActionType {
    CustomActionType {
        id: type_id(),
        settings: BTreeMap::new(),
        description: None,
        configuration_properties: Vec::new(),
        input_artifact_details: ArtifactCount { minimum_count: 0, maximum_count: 1 },
        output_artifact_details: ArtifactCount { minimum_count: 0, maximum_count: 1 },
        tags: Vec::new(),
        deleted: false,
        client: None,
    }
}

fn queued(id: &str, project: &str, created: i64) -> QueuedJob {
    QueuedJob {
        id: id.into(),
        action_type: type_id(),
        status: JobStatus::Queued,
        nonce: None,
        data: json!({"actionConfiguration": {"configuration": {"ProjectName": project}}}),
        query: BTreeMap::from([("ProjectName".to_owned(), project.to_owned())]),
        report: None,
        created,
        waiting: format!("Jenkins#{id}"),
        grant: id.into(),
        handed_over: false,
    }
}

/// A store of each kind: every scenario runs on both.
trait Queue: JobQueue + RunningJobs {}
impl<T: JobQueue + RunningJobs> Queue for T {}

async fn stores() -> Vec<Arc<dyn Queue>> {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config("eu-west-1").await);
    let table = unique("baton-jobs");
    create_table(&client, &table).await.unwrap();
    vec![
        Arc::new(SqlStateStore::in_memory().unwrap()),
        Arc::new(DynamoDbStateStore::new(client, table, 30)),
    ]
}

async fn desk(store: &Arc<dyn Queue>) -> JobDesk {
    let as_queue: Arc<dyn JobQueue> = Arc::new(Shared(store.clone()));
    let as_jobs: Arc<dyn RunningJobs> = Arc::new(Shared(store.clone()));
    let desk = JobDesk::new(as_queue, as_jobs, Arc::new(SystemClock));
    desk.create_type(definition()).await.unwrap();
    desk
}

/// One store seen through each of its ports.
struct Shared(Arc<dyn Queue>);

#[async_trait::async_trait]
impl JobQueue for Shared {
    async fn put_action_type(&self, t: &CustomActionType) -> Result<(), StoreError> {
        self.0.put_action_type(t).await
    }
    async fn action_types(&self) -> Result<Vec<CustomActionType>, StoreError> {
        self.0.action_types().await
    }
    async fn put_job(&self, job: &Versioned<QueuedJob>) -> Result<(), StoreError> {
        JobQueue::put_job(&*self.0, job).await
    }
    async fn job(&self, id: &str) -> Result<Option<Versioned<QueuedJob>>, StoreError> {
        self.0.job(id).await
    }
    async fn queued_jobs(
        &self,
        t: &ActionType,
        limit: usize,
    ) -> Result<Vec<Versioned<QueuedJob>>, StoreError> {
        self.0.queued_jobs(t, limit).await
    }
}

#[async_trait::async_trait]
impl RunningJobs for Shared {
    async fn put_job(&self, job: &RunningJob) -> Result<(), StoreError> {
        RunningJobs::put_job(&*self.0, job).await
    }
    async fn get_job(&self, key: &str) -> Result<Option<RunningJob>, StoreError> {
        self.0.get_job(key).await
    }
    async fn remove_job(&self, key: &str) -> Result<(), StoreError> {
        self.0.remove_job(key).await
    }
    async fn due_jobs(&self, now: i64, limit: usize) -> Result<Vec<RunningJob>, StoreError> {
        self.0.due_jobs(now, limit).await
    }
}

fn success() -> JobReport {
    JobReport::Succeeded {
        continuation_token: None,
        output_variables: BTreeMap::new(),
        summary: None,
        external_execution_id: None,
        revision: None,
    }
}

#[tokio::test]
async fn a_job_is_handed_to_one_poll_only_and_by_its_query() {
    for store in stores().await {
        let desk = desk(&store).await;
        for (i, project) in ["web", "api", "web"].iter().enumerate() {
            let job = queued(&format!("job-{i}"), project, i64::try_from(i).unwrap());
            JobQueue::put_job(&*store, &Versioned { version: 0, value: job }).await.unwrap();
        }
        let api = desk.poll(CUSTOM, &type_id(), 5, Some(("ProjectName", "api"))).await.unwrap();
        assert_eq!(api.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["job-1"]);
        let first = desk.poll(CUSTOM, &type_id(), 1, None).await.unwrap();
        assert_eq!(first.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["job-0"]);
        let rest = desk.poll(CUSTOM, &type_id(), 5, None).await.unwrap();
        assert_eq!(rest.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["job-2"]);
        assert!(
            desk.poll(CUSTOM, &type_id(), 5, None).await.unwrap().is_empty(),
            "a job was handed twice"
        );
        assert_ne!(first[0].nonce, rest[0].nonce, "two jobs share a nonce");
    }
}

#[tokio::test]
async fn a_stale_read_cannot_hand_out_a_job_again() {
    for store in stores().await {
        JobQueue::put_job(&*store, &Versioned { version: 0, value: queued("j", "web", 0) })
            .await
            .unwrap();
        let read = store.job("j").await.unwrap().unwrap();
        let mut taken = read.clone();
        taken.value.status = JobStatus::Dispatched;
        JobQueue::put_job(&*store, &taken).await.unwrap();
        // A second poller that read the job before the first wrote loses.
        assert!(JobQueue::put_job(&*store, &read).await.is_err());
        assert!(
            JobQueue::put_job(&*store, &Versioned { version: 0, value: queued("j", "web", 0) })
                .await
                .is_err()
        );
    }
}

#[tokio::test]
async fn reports_come_in_turn_and_once() {
    for store in stores().await {
        let desk = desk(&store).await;
        JobQueue::put_job(&*store, &Versioned { version: 0, value: queued("j", "web", 0) })
            .await
            .unwrap();
        assert!(matches!(
            desk.report("j", Worker, success()).await,
            Err(DeskError::InvalidJobState(_))
        ));
        let handed = desk.poll(CUSTOM, &type_id(), 1, None).await.unwrap().remove(0);
        assert!(matches!(
            desk.acknowledge("j", "wrong", Worker).await,
            Err(DeskError::InvalidNonce)
        ));
        let nonce = handed.nonce.unwrap();
        assert_eq!(desk.acknowledge("j", &nonce, Worker).await.unwrap(), JobStatus::InProgress);
        desk.report("j", Worker, success()).await.unwrap();
        assert_eq!(desk.details("j", Worker).await.unwrap().status, JobStatus::Succeeded);
        assert!(matches!(
            desk.report("j", Worker, success()).await,
            Err(DeskError::InvalidJobState(_))
        ));
        assert!(matches!(desk.details("gone", Worker).await, Err(DeskError::JobNotFound)));
    }
}

#[tokio::test]
async fn a_type_version_keeps_its_definition_even_once_deleted() {
    for store in stores().await {
        let desk = desk(&store).await;
        let mut other = definition();
        other.input_artifact_details.maximum_count = 2;
        assert!(matches!(desk.create_type(other.clone()).await, Err(DeskError::Invalid(_))));
        desk.delete_type(&type_id()).await.unwrap();
        assert!(desk.types().await.unwrap().is_empty());
        assert!(matches!(
            desk.poll(CUSTOM, &type_id(), 1, None).await,
            Err(DeskError::TypeNotFound(_))
        ));
        assert!(matches!(desk.create_type(other).await, Err(DeskError::Invalid(_))));
        desk.create_type(definition()).await.unwrap();
        assert_eq!(desk.types().await.unwrap().len(), 1);
        let mut aws_owned = definition();
        aws_owned.id.owner = "AWS".into();
        assert!(matches!(desk.create_type(aws_owned).await, Err(DeskError::Invalid(_))));
    }
}

/// A bus that keeps what it is given.
#[derive(Default)]
struct Recorded(std::sync::Mutex<Vec<baton::bus_events::BusEvent>>);

#[async_trait::async_trait]
impl baton::ports::bus::EventBus for Recorded {
    async fn publish(
        &self,
        events: &[baton::bus_events::BusEvent],
    ) -> Result<(), baton::ports::bus::BusError> {
        self.0.lock().unwrap().extend(events.iter().cloned());
        Ok(())
    }
}

#[tokio::test]
async fn a_report_makes_its_attempt_due_and_tells_the_worker() {
    let store = Arc::new(SqlStateStore::in_memory().unwrap());
    let bus = Arc::new(Recorded::default());
    let desk =
        JobDesk::new(store.clone(), store.clone(), Arc::new(SystemClock)).with_bus(bus.clone());
    desk.create_type(definition()).await.unwrap();
    for id in ["waited", "orphan"] {
        JobQueue::put_job(&*store, &Versioned { version: 0, value: queued(id, "web", 0) })
            .await
            .unwrap();
    }
    let request = baton_testkit::build_request("p", "e-1");
    let later = i64::MAX / 2;
    let running = RunningJob {
        key: "Jenkins#waited".into(),
        request,
        external_id: "waited".into(),
        external_url: None,
        check_at: later,
    };
    RunningJobs::put_job(&*store, &running).await.unwrap();
    desk.poll(CUSTOM, &type_id(), 2, None).await.unwrap();
    desk.report("waited", Worker, success()).await.unwrap();
    let due = store.get_job("Jenkins#waited").await.unwrap().unwrap();
    assert!(due.check_at < later, "the attempt is not due");
    let told: Vec<_> =
        bus.0.lock().unwrap().iter().filter_map(|e| e.reported_job().map(str::to_owned)).collect();
    assert_eq!(told, ["Jenkins#waited"]);
    // A job no attempt waits on any more is recorded, and nobody is told.
    desk.report("orphan", Worker, success()).await.unwrap();
    assert_eq!(bus.0.lock().unwrap().len(), 1);
}

fn partner_type() -> ActionType {
    ActionType { owner: THIRD_PARTY.into(), provider: "Ghost".into(), ..type_id() }
}

#[tokio::test]
async fn a_partners_jobs_need_its_client_token_and_stay_out_of_workers_reach() {
    for store in stores().await {
        let desk = desk(&store).await;
        let registered = desk
            .register_partner(CustomActionType { id: partner_type(), ..definition() })
            .await
            .unwrap();
        let pair = registered.action_type.client.clone().unwrap();
        let token = registered.client_token;
        assert_eq!(pair.id.len(), 36, "{pair:?}");
        assert!(!format!("{pair:?}").contains(&token), "the token itself is kept");
        let job = QueuedJob { action_type: partner_type(), ..queued("p-1", "web", 0) };
        JobQueue::put_job(&*store, &Versioned { version: 0, value: job }).await.unwrap();
        // Workers of custom types neither poll for it nor see it.
        let err = desk.poll(CUSTOM, &partner_type(), 1, None).await;
        assert!(matches!(err, Err(DeskError::TypeNotFound(_))), "{err:?}");
        assert_eq!(desk.poll(THIRD_PARTY, &partner_type(), 5, None).await.unwrap().len(), 1);
        assert!(matches!(desk.details("p-1", Worker).await, Err(DeskError::JobNotFound)));
        let wrong = desk.details("p-1", Partner("not-the-token")).await;
        assert!(matches!(wrong, Err(DeskError::InvalidClientToken)), "{wrong:?}");
        let nonce = desk.details("p-1", Partner(&token)).await.unwrap().nonce.unwrap();
        let status = desk.acknowledge("p-1", &nonce, Partner(&token)).await.unwrap();
        assert_eq!(status, JobStatus::InProgress);
        // Registering again keeps the client id and revokes the old token.
        let again = desk
            .register_partner(CustomActionType { id: partner_type(), ..definition() })
            .await
            .unwrap();
        assert_eq!(again.action_type.client.unwrap().id, pair.id);
        let old = desk.report("p-1", Partner(&token), success()).await;
        assert!(matches!(old, Err(DeskError::InvalidClientToken)), "{old:?}");
        desk.report("p-1", Partner(&again.client_token), success()).await.unwrap();
        // A partner's token opens none of the custom type's jobs.
        JobQueue::put_job(&*store, &Versioned { version: 0, value: queued("c-1", "web", 1) })
            .await
            .unwrap();
        let custom = desk.details("c-1", Partner(&again.client_token)).await;
        assert!(matches!(custom, Err(DeskError::JobNotFound)), "{custom:?}");
        // Once deregistered, nobody can prove to be the partner.
        desk.deregister_partner(&partner_type()).await.unwrap();
        let gone = desk.details("p-1", Partner(&again.client_token)).await;
        assert!(matches!(gone, Err(DeskError::InvalidClientToken)), "{gone:?}");
        let github =
            ActionType { category: "Source".into(), provider: "GitHub".into(), ..partner_type() };
        let refused = desk.register_partner(CustomActionType { id: github, ..definition() }).await;
        assert!(matches!(refused, Err(DeskError::Invalid(_))), "{refused:?}");
    }
}
