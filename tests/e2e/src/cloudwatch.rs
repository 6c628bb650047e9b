//! What CloudWatch answers on AWS and moto cannot: an alarm's state as the SDK reads it, in
//! CloudWatch's Smithy RPC v2 CBOR protocol, which moto does not speak. The counting proxy
//! answers the functions' `DescribeAlarms` from here, once the harness has decided the caller
//! may read the alarms it names (`cloudwatch:DescribeAlarms` on each alarm's ARN).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The stand-in's alarms: name to state (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
#[derive(Debug, Clone, Default)]
pub struct Alarms {
    inner: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Alarms {
    /// Puts the alarm `name` in `state`.
    pub fn set(&self, name: &str, state: &str) {
        let mut all = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        all.insert(name.to_owned(), state.to_owned());
    }

    /// The alarms a `DescribeAlarms` request names, with their states. The request is CBOR:
    /// a name is found as its text in it.
    pub fn named_in(&self, request: &[u8]) -> Vec<(String, String)> {
        let all = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let named = |n: &str| request.windows(n.len()).any(|w| w == n.as_bytes());
        all.iter().filter(|(n, _)| named(n)).map(|(n, s)| (n.clone(), s.clone())).collect()
    }
}

/// `{"MetricAlarms": [{"AlarmName": …, "AlarmArn": …, "StateValue": …}], "CompositeAlarms":
/// []}` in CBOR, for alarms (name, ARN, state).
pub fn answer(alarms: &[(String, String, String)]) -> Vec<u8> {
    let mut out = vec![0xA2];
    text(&mut out, "MetricAlarms");
    head(&mut out, 0x80, alarms.len());
    for (name, arn, state) in alarms {
        out.push(0xA3);
        for (key, value) in [("AlarmName", name), ("AlarmArn", arn), ("StateValue", state)] {
            text(&mut out, key);
            text(&mut out, value);
        }
    }
    text(&mut out, "CompositeAlarms");
    out.push(0x80);
    out
}

/// CloudWatch's refusal of a caller, in CBOR.
pub fn refusal(message: &str) -> Vec<u8> {
    let mut out = vec![0xA2];
    for (key, value) in [("__type", "AccessDenied"), ("message", message)] {
        text(&mut out, key);
        text(&mut out, value);
    }
    out
}

/// A CBOR item's head: its major type and a length below 65,536.
fn head(out: &mut Vec<u8>, major: u8, n: usize) {
    match n {
        0..24 => out.push(major | n as u8),
        24..256 => out.extend_from_slice(&[major | 24, n as u8]),
        _ => {
            out.push(major | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    head(out, 0x60, s.len());
    out.extend_from_slice(s.as_bytes());
}
