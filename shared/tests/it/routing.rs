//! The in-process bus routes by the very rules `template.yaml` gives EventBridge.

use std::collections::BTreeMap;

use baton::routing::rules;
use serde_norway::Value;

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn is_ref_to(v: &Value, name: &str) -> bool {
    match v {
        Value::Tagged(t) => t.tag == "!Ref" && t.value.as_str() == Some(name),
        _ => false,
    }
}

/// Every rule on the project's own bus, by name, with its pattern as JSON.
fn bus_rules(t: &Value) -> BTreeMap<String, serde_json::Value> {
    let mut found = BTreeMap::new();
    let Some(resources) = t.get("Resources").and_then(Value::as_mapping) else { return found };
    for (name, resource) in resources {
        let name = name.as_str().unwrap().to_string();
        let props = &resource["Properties"];
        if resource["Type"].as_str() == Some("AWS::Events::Rule")
            && is_ref_to(&props["EventBusName"], "EventsBus")
        {
            found.insert(name.clone(), serde_json::to_value(&props["EventPattern"]).unwrap());
        }
        if let Some(events) = props.get("Events").and_then(Value::as_mapping) {
            for (event_name, event) in events {
                let p = &event["Properties"];
                if event["Type"].as_str() == Some("EventBridgeRule")
                    && is_ref_to(&p["EventBusName"], "EventsBus")
                {
                    found.insert(
                        event_name.as_str().unwrap().to_string(),
                        serde_json::to_value(&p["Pattern"]).unwrap(),
                    );
                }
            }
        }
    }
    found
}

#[test]
fn the_local_bus_and_the_template_have_the_same_rules() {
    let in_template = bus_rules(&template());
    let local: BTreeMap<String, serde_json::Value> =
        rules().into_iter().map(|r| (r.name.to_string(), r.pattern)).collect();
    assert_eq!(in_template, local);
}

#[tokio::test]
async fn the_local_bus_keeps_the_event_bus_contract() {
    let dir = tempfile::tempdir().unwrap();
    let bus = baton::adapters::local::local_bus::LocalBus::open(&dir.path().join("baton.db"), None)
        .unwrap();
    let delivered = |target, _expected| {
        let claimed = bus.claim(target, 100).unwrap();
        for d in &claimed {
            bus.complete(d.seq).unwrap();
        }
        async move { claimed.into_iter().map(|d| d.event).collect::<Vec<_>>() }
    };
    baton_testkit::event_bus_contract(&bus, delivered).await;
}
