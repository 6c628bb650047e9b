//! The state-store contract, run against the SQLite adapter, and the claims contract against
//! the embedded runtime's in-memory claims.

use baton::adapters::local::sql_state::SqlStateStore;
use baton_testkit::state_store_contract;

#[tokio::test]
async fn the_sqlite_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStateStore::open(&dir.path().join("baton.db")).unwrap();
    state_store_contract(&store, "contract").await;
    baton_testkit::approval_links_contract(&store).await;
    baton_testkit::action_claims_contract(&store).await;
}

/// The embedded runtime's claims, held in memory by the one dispatching process.
#[tokio::test]
async fn the_memory_claims_keep_the_claims_contract() {
    let claims = baton::adapters::local::memory_claims::MemoryClaims::default();
    baton_testkit::action_claims_contract(&claims).await;
}

#[tokio::test]
async fn a_second_connection_sees_what_the_first_saved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baton.db");
    let first = SqlStateStore::open(&path).unwrap();
    state_store_contract(&first, "shared").await;
    let second = SqlStateStore::open(&path).unwrap();
    use baton::ports::state::StateStore;
    assert_eq!(second.executions("shared", 10).await.unwrap().len(), 3);
}
