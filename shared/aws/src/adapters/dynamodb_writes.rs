//! Where one save lands in the table: which executions live in the lanes item, which in items
//! of their own, and which item carries the save's events to the table's stream.
//!
//! Why executions live in the lanes item: in SUPERSEDED and QUEUED mode almost every save
//! changes the lanes and the execution that holds a stage together. Two items need a
//! transaction, and DynamoDB bills a transactional write twice; one item is one plain
//! conditional write. So an execution that holds a stage is kept inside the lanes item
//! ("resident"), and moves to its own item when it lets go of its stages (it ended, or it waits
//! between stages) or grows past [`MAX_RESIDENT_BYTES`]. Holders are at most one per stage, so
//! the lanes item stays bounded. PARALLEL mode holds no stages: its executions always have
//! their own items, and a save there is one write of that item.
//!
//! Why events ride on the state items: the table's stream carries every write, so the events
//! written with the state reach the stream relay (see [`super::dynamodb_relay`]) exactly when
//! the state does. There is no outbox item to write and no acknowledgement to delete.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use baton_core::engine::{Execution, Millis};

use super::dynamodb_state::{Item, packed, to_json};
use baton_app::ports::state::{Changes, StoreError};

/// Marks the version of a resident execution: the rest is the lanes item's version, which is
/// what a save of it is conditioned on. Callers treat versions as opaque.
pub(super) const RESIDENT: u64 = 1 << 48;
/// Resident executions are attributes of the lanes item named this plus their id, or (an id
/// that is a UUID, as Baton makes every execution id) [`UUID_RESIDENT_PREFIX`] plus its 16
/// bytes in URL-safe base64: 24 characters, not 38. Why: the name is stored, and billed, on
/// every write of the lanes item, and again in the header of the events packed against it.
pub(super) const RESIDENT_PREFIX: &str = "x:";
/// See [`RESIDENT_PREFIX`].
pub(super) const UUID_RESIDENT_PREFIX: &str = "u:";
/// A resident's deflated size limit: holders are at most one per stage (CodePipeline allows 50
/// stages), so the lanes item stays far below DynamoDB's 400 KB.
pub(super) const MAX_RESIDENT_BYTES: usize = 4 * 1024;
/// The attribute holding a save's events (deflated JSON list) on the item that carries them.
pub(super) const EVENTS: &str = "events";
/// How many events [`EVENTS`] holds; the stream relay's filter matches on it.
pub(super) const EVENT_COUNT: &str = "event_count";

/// The attribute name of resident execution `id`.
pub(super) fn resident_attribute(id: &str) -> String {
    match uuid_bytes(id) {
        Some(bytes) => format!("{UUID_RESIDENT_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)),
        None => format!("{RESIDENT_PREFIX}{id}"),
    }
}

/// The name a resident UUID had before [`UUID_RESIDENT_PREFIX`], removed whenever the compact
/// one is written or removed, so an execution written by an earlier version is not left
/// behind beside itself.
fn earlier_resident_attribute(id: &str) -> Option<String> {
    uuid_bytes(id).map(|_| format!("{RESIDENT_PREFIX}{id}"))
}

/// Whether `name` is a resident execution's attribute of the lanes item.
pub fn is_resident_attribute(name: &str) -> bool {
    name.starts_with(RESIDENT_PREFIX) || name.starts_with(UUID_RESIDENT_PREFIX)
}

/// The 16 bytes of `id` when it is a UUID in its canonical form (lowercase, hyphenated): the
/// only form with a compact name, so no two ids share one. Canonical is what formats back
/// to `id` itself.
fn uuid_bytes(id: &str) -> Option<[u8; 16]> {
    let bits = u128::from_str_radix(&id.replace('-', ""), 16).ok()?;
    let h = format!("{bits:032x}");
    let canonical = format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]);
    (canonical == id).then(|| bits.to_be_bytes())
}

/// What one save writes.
#[derive(Debug, Default)]
pub(super) struct Writes {
    /// The update of the lanes item, when the save touches it.
    pub lanes: Option<LanesWrite>,
    /// Writes of executions' own items.
    pub own: Vec<OwnWrite>,
}

/// An update of the lanes item, conditioned on the version it was read at.
#[derive(Debug, Default)]
pub(super) struct LanesWrite {
    /// The version read (0: the item does not exist yet).
    pub read: u64,
    /// The new lanes (packed JSON), when they changed.
    pub body: Option<AttributeValue>,
    /// Resident executions written: attribute name and deflated body.
    pub set: Vec<(String, AttributeValue)>,
    /// Residents that moved out.
    pub remove: Vec<String>,
    /// Residents that must not exist: executions this save creates in items of their own.
    pub absent: Vec<String>,
}

/// A write of an execution's own item.
///
/// Own items' versions only ever grow, also across moves in and out of the lanes item: a
/// writer holding an old version must never find it current again.
#[derive(Debug)]
pub(super) enum OwnWrite {
    /// Put the item, conditioned on the version read (0: it must not exist).
    Put { item: Item, read: u64 },
    /// The execution moves out of the lanes item: its item is written first, with its version
    /// incremented from whatever it was, as a draft the lanes item's update then makes current
    /// (see `dynamodb_state::moved_out`).
    MoveOut { item: Item },
    /// The execution moved into the lanes item: its item becomes a tombstone (`resident`) at
    /// the next version, if still at `read`. It keeps the execution's start time, so the
    /// item's entry in the `by-start` index stays as it was (an index write only when it
    /// changes).
    MoveIn { id: String, read: u64, started: Millis },
}

/// Decides where each execution of `changes` lands. `own_item` builds an execution's own item.
///
/// # Errors
/// [`StoreError::Conflict`] when the executions were read at different versions of the lanes
/// item (they cannot all be current); serialization failures otherwise.
pub(super) fn plan(
    pipeline: &str,
    changes: &Changes,
    own_item: impl Fn(&Execution, AttributeValue) -> Result<Item, StoreError>,
) -> Result<Writes, StoreError> {
    let holders: Option<HashSet<&str>> = changes
        .lanes
        .as_ref()
        .map(|l| l.value.holders.iter().flatten().map(String::as_str).collect());
    let body = changes.lanes.as_ref().map(|l| packed(&to_json(&l.value)?)).transpose()?;
    let mut lanes_read: Option<u64> = changes.lanes.as_ref().map(|l| l.version);
    let mut own = Vec::new();
    let mut writes_lanes = |read: u64| -> Result<(), StoreError> {
        match lanes_read {
            Some(v) if v != read => Err(StoreError::Conflict(pipeline.to_owned())),
            _ => {
                lanes_read = Some(read);
                Ok(())
            }
        }
    };
    let mut set = Vec::new();
    let mut remove = Vec::new();
    let mut absent = Vec::new();
    for e in &changes.executions {
        let x = &e.value;
        let was_resident = e.version & RESIDENT != 0;
        let read = e.version & !RESIDENT;
        // Deflated once, for whichever item it lands in.
        let packed = packed(&to_json(x)?)?;
        let small =
            matches!(&packed, AttributeValue::B(b) if b.as_ref().len() <= MAX_RESIDENT_BYTES);
        let holds = match &holders {
            Some(h) => h.contains(x.id.as_str()),
            None => was_resident,
        };
        let stays = !x.status().is_ended() && small && holds;
        match (was_resident, stays) {
            (true, true) => {
                writes_lanes(read)?;
                set.push((resident_attribute(&x.id), packed));
                remove.extend(earlier_resident_attribute(&x.id));
            }
            (true, false) => {
                writes_lanes(read)?;
                remove.push(resident_attribute(&x.id));
                remove.extend(earlier_resident_attribute(&x.id));
                own.push(OwnWrite::MoveOut { item: own_item(x, packed)? });
            }
            (false, true) => {
                set.push((resident_attribute(&x.id), packed));
                if read > 0 {
                    own.push(OwnWrite::MoveIn { id: x.id.clone(), read, started: x.started_at });
                }
            }
            (false, false) => {
                if read == 0 {
                    absent.push(resident_attribute(&x.id));
                }
                own.push(OwnWrite::Put { item: own_item(x, packed)?, read });
            }
        }
    }
    // Only residents changed: the lanes item is written at the version they were read at.
    let touched = body.is_some() || !set.is_empty() || !remove.is_empty();
    let lanes =
        touched.then(|| LanesWrite { read: lanes_read.unwrap_or(0), body, set, remove, absent });
    Ok(Writes { lanes, own })
}

#[cfg(test)]
mod tests {
    use baton_core::engine::{ExecutionStatus, Lanes};

    use super::*;
    use baton_app::ports::state::Versioned;
    use baton_testkit::execution;

    fn item(x: &Execution, _body: AttributeValue) -> Result<Item, StoreError> {
        Ok(Item::from([("id".to_owned(), AttributeValue::S(x.id.clone()))]))
    }

    fn holding(id: &str) -> Option<Versioned<Lanes>> {
        Some(Versioned {
            version: 3,
            value: Lanes { holders: vec![Some(id.into()), None], ..Lanes::default() },
        })
    }

    fn id_of(item: &Item) -> &str {
        match &item["id"] {
            AttributeValue::S(id) => id,
            _ => unreachable!("the test's items have an id"),
        }
    }

    fn ids(writes: &Writes) -> Vec<String> {
        writes
            .own
            .iter()
            .map(|w| match w {
                OwnWrite::Put { item, read } => format!("put {} {read}", id_of(item)),
                OwnWrite::MoveOut { item } => format!("move out {}", id_of(item)),
                OwnWrite::MoveIn { id, read, .. } => format!("move in {id} {read}"),
            })
            .collect()
    }

    #[test]
    fn a_uuid_resident_has_a_compact_name_and_any_other_id_its_own() {
        let id = "8d8ca7db-599b-4fc2-97c1-4347124190e5";
        assert_eq!(resident_attribute(id), "u:jYyn21mbT8KXwUNHEkGQ5Q");
        assert_eq!(
            earlier_resident_attribute(id).as_deref(),
            Some("x:8d8ca7db-599b-4fc2-97c1-4347124190e5")
        );
        // Only the canonical form is compact, so no two ids share a name.
        for other in [
            "8D8CA7DB-599B-4FC2-97C1-4347124190E5",
            "8d8ca7db599b4fc297c14347124190e5",
            "8d8ca7db-599b-4fc2-97c1-4347124190eg",
            "e1",
            "jYyn21mbT8KXwUNHEkGQ5Q",
        ] {
            assert_eq!(resident_attribute(other), format!("x:{other}"));
            assert_eq!(earlier_resident_attribute(other), None);
        }
        assert!(is_resident_attribute("u:jYyn21mbT8KXwUNHEkGQ5Q") && is_resident_attribute("x:e1"));
        assert!(!is_resident_attribute("events") && !is_resident_attribute("version"));
    }

    #[test]
    fn a_uuid_resident_written_again_drops_its_earlier_name() {
        let id = "8d8ca7db-599b-4fc2-97c1-4347124190e5";
        let mut x = execution(id, ExecutionStatus::InProgress, 0);
        let changes = Changes {
            lanes: holding(id),
            executions: vec![Versioned { version: RESIDENT | 3, value: x.clone() }],
            outbox: vec![],
        };
        let writes = plan("p", &changes, item).unwrap();
        let lanes = writes.lanes.unwrap();
        assert_eq!(
            lanes.set.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["u:jYyn21mbT8KXwUNHEkGQ5Q"]
        );
        assert_eq!(lanes.remove, [format!("x:{id}")]);

        x.phase = baton_testkit::phase_of(ExecutionStatus::Succeeded);
        let changes = Changes {
            lanes: Some(Versioned { version: 3, value: Lanes::default() }),
            executions: vec![Versioned { version: RESIDENT | 3, value: x }],
            outbox: vec![],
        };
        let writes = plan("p", &changes, item).unwrap();
        assert_eq!(
            writes.lanes.unwrap().remove,
            ["u:jYyn21mbT8KXwUNHEkGQ5Q".to_owned(), format!("x:{id}")]
        );
    }

    #[test]
    fn a_new_execution_that_holds_a_stage_lives_in_the_lanes_item() {
        let changes = Changes {
            lanes: holding("e1"),
            executions: vec![Versioned {
                version: 0,
                value: execution("e1", ExecutionStatus::InProgress, 0),
            }],
            outbox: vec![],
        };
        let writes = plan("p", &changes, item).unwrap();
        let lanes = writes.lanes.as_ref().expect("the lanes item is written");
        assert_eq!(lanes.read, 3);
        assert_eq!(lanes.set.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["x:e1"]);
        assert!(writes.own.is_empty(), "one item, no transaction: {:?}", ids(&writes));
    }

    #[test]
    fn an_ended_resident_moves_to_its_own_item_under_the_lanes_condition() {
        let changes = Changes {
            lanes: holding("other"),
            executions: vec![Versioned {
                version: RESIDENT | 3,
                value: execution("e1", ExecutionStatus::Succeeded, 0),
            }],
            outbox: vec![],
        };
        let writes = plan("p", &changes, item).unwrap();
        assert_eq!(writes.lanes.as_ref().unwrap().remove, ["x:e1"]);
        assert_eq!(ids(&writes), ["move out e1"]);
    }

    #[test]
    fn an_execution_entering_a_stage_moves_in_and_its_own_item_goes() {
        let changes = Changes {
            lanes: holding("e2"),
            executions: vec![Versioned {
                version: 4,
                value: execution("e2", ExecutionStatus::InProgress, 1),
            }],
            outbox: vec![],
        };
        let writes = plan("p", &changes, item).unwrap();
        assert_eq!(writes.lanes.as_ref().unwrap().set.len(), 1);
        assert_eq!(ids(&writes), ["move in e2 4"]);
    }

    #[test]
    fn a_resident_changed_without_the_lanes_writes_the_lanes_item_at_its_version() {
        let changes = Changes {
            lanes: None,
            executions: vec![Versioned {
                version: RESIDENT | 7,
                value: execution("e1", ExecutionStatus::InProgress, 0),
            }],
            outbox: vec![],
        };
        let writes = plan("p", &changes, item).unwrap();
        let lanes = writes.lanes.unwrap();
        assert_eq!((lanes.read, lanes.body.is_none(), lanes.set.len()), (7, true, 1));
    }

    #[test]
    fn parallel_executions_hold_no_stage_and_keep_their_own_items() {
        let changes = Changes {
            lanes: None,
            executions: vec![Versioned {
                version: 2,
                value: execution("e1", ExecutionStatus::InProgress, 0),
            }],
            outbox: vec![],
        };
        let writes = plan("p", &changes, item).unwrap();
        assert!(writes.lanes.is_none());
        assert_eq!(ids(&writes), ["put e1 2"]);
    }

    #[test]
    fn residents_read_at_different_lanes_versions_conflict() {
        let changes = Changes {
            lanes: holding("e1"),
            executions: vec![Versioned {
                version: RESIDENT | 2,
                value: execution("e1", ExecutionStatus::InProgress, 0),
            }],
            outbox: vec![],
        };
        assert!(matches!(plan("p", &changes, item), Err(StoreError::Conflict(_))));
    }
}
