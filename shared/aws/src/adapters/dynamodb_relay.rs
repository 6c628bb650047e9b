//! The outbox relay's reading side: each save writes its events on an item it writes anyway
//! (see `dynamodb_writes`), the table's stream carries that item's new image, and a Lambda
//! event source mapping hands the records to stage-advance, which publishes them in order.
//!
//! Records come as Lambda gives them: DynamoDB's JSON, binary attributes in base64.

use base64::Engine as _;
use serde_json::Value;

use super::dynamodb_packing as packing;
use super::dynamodb_writes::EVENTS;
use baton_protocol::bus_events::BusEvent;

/// The events a stream record carries, in the order they were saved: none for a write that
/// carried none, or a record that is not an insert or a modify (deletes, expiries).
///
/// # Errors
/// A sentence saying what is wrong with the record.
pub fn record_events(record: &Value) -> Result<Vec<BusEvent>, String> {
    match record.get("eventName").and_then(Value::as_str) {
        Some("INSERT" | "MODIFY") => {}
        Some(_) => return Ok(Vec::new()),
        None => return Err("the stream record has no eventName".into()),
    }
    let image = record
        .get("dynamodb")
        .and_then(|d| d.get("NewImage"))
        .ok_or("the stream record has no new image (the stream must show new images)")?;
    let Some(events) = image.get(EVENTS) else { return Ok(Vec::new()) };
    let bytes = binary(events).ok_or("the record's events attribute is not binary base64")?;
    // The events may be deflated against executions on the same item: the image shows them.
    let json = packing::unpack(&bytes, |name| {
        let base = image.get(name).and_then(binary).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, format!("no attribute {name}"))
        })?;
        packing::unpack_alone(&base)
    })
    .map_err(|e| format!("the record's events attribute does not inflate: {e}"))?;
    serde_json::from_str(&json).map_err(|e| format!("the record's events do not read: {e}"))
}

/// The events an item carries, as a read of the table gives it.
///
/// # Errors
/// A sentence saying what is wrong with them.
pub fn item_events(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> Result<Vec<BusEvent>, String> {
    if !item.contains_key(EVENTS) {
        return Ok(Vec::new());
    }
    let json = super::dynamodb_state::unpacked(item, EVENTS).map_err(|e| e.to_string())?;
    serde_json::from_str(&json).map_err(|e| format!("the item's events do not read: {e}"))
}

/// The bytes of a binary attribute as a record shows it (base64).
fn binary(value: &Value) -> Option<Vec<u8>> {
    let text = value.get("B")?.as_str()?;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// A record's sequence number: a failure reported with it makes Lambda retry from that record.
pub fn sequence_number(record: &Value) -> Option<&str> {
    record.get("dynamodb")?.get("SequenceNumber")?.as_str()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use baton_testkit::{event, events_blob as blob};

    fn record(name: &str, image: Value) -> Value {
        json!({"eventName": name, "eventSource": "aws:dynamodb",
               "dynamodb": {"SequenceNumber": "42", "NewImage": image}})
    }

    #[test]
    fn a_record_gives_back_the_events_in_the_order_saved() {
        let r = record("MODIFY", json!({"events": {"B": blob(&[event(1), event(2)])}}));
        let got = record_events(&r).unwrap();
        assert_eq!(got, vec![event(1), event(2)]);
        assert_eq!(sequence_number(&r), Some("42"));
    }

    /// Events deflated against the execution the save wrote on the same item read back from
    /// the record alone, and not without that execution.
    #[test]
    fn events_deflated_against_an_execution_on_the_item_read_back_from_the_image() {
        use base64::engine::general_purpose::STANDARD;
        let execution = r#"{"id":"e1","stages":[{"status":"InProgress"}]}"#;
        let events = serde_json::to_string(&[event(1), event(2)]).unwrap();
        let resident = STANDARD.encode(packing::pack(execution, &[]).unwrap());
        let carried = STANDARD.encode(packing::pack(&events, &[("x:e1", execution)]).unwrap());
        let image = json!({"x:e1": {"B": resident}, "events": {"B": carried}});
        assert_eq!(record_events(&record("MODIFY", image)).unwrap(), vec![event(1), event(2)]);
        let without = json!({"events": {"B": carried}});
        let err = record_events(&record("MODIFY", without)).unwrap_err();
        assert!(err.contains("does not inflate") && err.contains("x:e1"), "{err}");
    }

    #[test]
    fn writes_without_events_and_deletes_give_none() {
        assert!(
            record_events(&record("MODIFY", json!({"version": {"N": "2"}}))).unwrap().is_empty()
        );
        let removed = json!({"eventName": "REMOVE", "dynamodb": {"OldImage": {}}});
        assert!(record_events(&removed).unwrap().is_empty());
    }

    #[test]
    fn a_damaged_record_is_refused_with_a_reason() {
        let r = record("INSERT", json!({"events": {"B": "not base64!"}}));
        let not_binary = "the record's events attribute is not binary base64";
        assert_eq!(record_events(&r).unwrap_err(), not_binary);
        let r = record("INSERT", json!({"events": {"S": "text"}}));
        assert_eq!(record_events(&r).unwrap_err(), not_binary);
        let r = json!({"eventName": "INSERT", "dynamodb": {}});
        assert!(record_events(&r).unwrap_err().contains("new image"));
    }
}
