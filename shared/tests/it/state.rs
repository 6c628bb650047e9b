//! The state-store contract, run against the SQLite adapter.

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
