//! The outbox relay's event source mapping, as Lambda runs it on AWS: the table's stream is
//! read shard by shard from its start, records that pass the mapping's filters are handed to
//! the function in order, in batches, and a record the function reports failed is sent again
//! with those after it. The duplicate fault sends every batch twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::runtime::Pool;
use crate::template::StreamSource;

/// Polls `stream_arn` and delivers to `pool` until the task is dropped.
pub async fn relay(
    streams: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    source: StreamSource,
    pool: Arc<Pool>,
    duplicate: bool,
    errors: crate::delivery::Collected,
) {
    // Lambda finds the stream among its table's (ListStreams) and looks for new shards again
    // and again (a stream's shards roll over every few hours): so these reads too are made as
    // the role all along, not only before IAM is enforced.
    let table = stream_arn.split('/').nth(1).unwrap_or_default().to_owned();
    let mut iterators: BTreeMap<String, String> = BTreeMap::new();
    let mut refreshed: Option<Instant> = None;
    loop {
        if refreshed.is_none_or(|at| at.elapsed() >= SHARD_REFRESH) {
            refreshed = Some(Instant::now());
            for shard in shards(&streams, &table, &stream_arn).await {
                if iterators.contains_key(&shard) {
                    continue;
                }
                let iterator = streams
                    .get_shard_iterator()
                    .stream_arn(&stream_arn)
                    .shard_id(&shard)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await;
                if let Ok(i) = iterator
                    && let Some(i) = i.shard_iterator
                {
                    iterators.insert(shard, i);
                }
            }
        }
        let mut idle = true;
        for iterator in iterators.values_mut() {
            let Ok(out) = streams.get_records().shard_iterator(iterator.as_str()).send().await
            else {
                continue;
            };
            if let Some(next) = out.next_shard_iterator() {
                iterator.clone_from(&next.to_owned());
            }
            let records: Vec<Value> = out
                .records()
                .iter()
                .map(|r| lambda_record(r, &stream_arn))
                .filter(|r| {
                    source.filters.is_empty() || source.filters.iter().any(|f| matches(f, r))
                })
                .collect();
            for batch in records.chunks(source.batch_size.max(1)) {
                idle = false;
                deliver(&pool, batch, &errors).await;
                if duplicate {
                    deliver(&pool, batch, &errors).await;
                }
            }
        }
        if idle {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// How often the shards are listed again.
const SHARD_REFRESH: Duration = Duration::from_secs(1);

/// The shards of `stream_arn`, if `table` lists it.
async fn shards(
    streams: &aws_sdk_dynamodbstreams::Client,
    table: &str,
    stream_arn: &str,
) -> Vec<String> {
    let listed = streams
        .list_streams()
        .table_name(table)
        .send()
        .await
        .is_ok_and(|out| out.streams().iter().any(|s| s.stream_arn() == Some(stream_arn)));
    if !listed {
        return Vec::new();
    }
    let Ok(out) = streams.describe_stream().stream_arn(stream_arn).send().await else {
        return Vec::new();
    };
    out.stream_description()
        .map(|d| d.shards())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.shard_id().map(str::to_owned))
        .collect()
}

/// Invokes until every record of `batch` was taken, resuming from a reported failure.
async fn deliver(pool: &Pool, batch: &[Value], errors: &crate::delivery::Collected) {
    let mut rest = batch.to_vec();
    while !rest.is_empty() {
        let failed_at = match pool.invoke(json!({"Records": rest})).await {
            Ok(Ok(answer)) => answer["batchItemFailures"]
                .as_array()
                .and_then(|f| f.first())
                .and_then(|f| f["itemIdentifier"].as_str())
                .and_then(|seq| {
                    rest.iter().position(|r| r["dynamodb"]["SequenceNumber"].as_str() == Some(seq))
                }),
            Ok(Err(e)) => {
                errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(e);
                Some(0)
            }
            Err(e) => {
                let text = Value::String(format!("{e:#}"));
                errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(text);
                Some(0)
            }
        };
        match failed_at {
            Some(i) => {
                rest.drain(..i);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            None => rest.clear(),
        }
    }
}

/// A stream record as Lambda hands it to a function.
fn lambda_record(r: &Record, stream_arn: &str) -> Value {
    let image = |i: Option<&std::collections::HashMap<String, AttributeValue>>| {
        i.map(|m| Value::Object(m.iter().map(|(k, v)| (k.clone(), attribute(v))).collect()))
    };
    let d = r.dynamodb();
    let mut dynamodb = Map::new();
    if let Some(k) = image(d.and_then(|d| d.keys.as_ref())) {
        dynamodb.insert("Keys".into(), k);
    }
    if let Some(n) = image(d.and_then(|d| d.new_image.as_ref())) {
        dynamodb.insert("NewImage".into(), n);
    }
    dynamodb.insert(
        "SequenceNumber".into(),
        json!(d.and_then(|d| d.sequence_number()).unwrap_or_default()),
    );
    dynamodb.insert("StreamViewType".into(), json!("NEW_IMAGE"));
    json!({
        "eventID": r.event_id(),
        "eventName": r.event_name().map(|n| n.as_str()),
        "eventVersion": r.event_version(),
        "eventSource": "aws:dynamodb",
        "awsRegion": r.aws_region(),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    })
}

/// DynamoDB's JSON for one attribute value, binary in base64.
fn attribute(v: &AttributeValue) -> Value {
    let b64 = |b: &aws_sdk_dynamodbstreams::primitives::Blob| {
        base64::engine::general_purpose::STANDARD.encode(b.as_ref())
    };
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": b64(b)}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(n) => json!({"NULL": n}),
        AttributeValue::Ss(s) => json!({"SS": s}),
        AttributeValue::Ns(n) => json!({"NS": n}),
        AttributeValue::Bs(bs) => json!({"BS": bs.iter().map(b64).collect::<Vec<_>>()}),
        AttributeValue::L(l) => json!({"L": l.iter().map(attribute).collect::<Vec<_>>()}),
        AttributeValue::M(m) => {
            json!({"M": m.iter().map(|(k, v)| (k.clone(), attribute(v))).collect::<Map<_, _>>()})
        }
        _ => Value::Null,
    }
}

/// Whether `value` matches an event filter pattern: every key of an object pattern matches,
/// and a list matches if any of its values equals the field or an `exists` test holds.
fn matches(pattern: &Value, value: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(k, p)| match p {
            Value::Array(_) => matches(p, &value[k.as_str()]),
            _ => value.get(k).is_some_and(|v| matches(p, v)),
        }),
        Value::Array(options) => options.iter().any(|o| match o.get("exists") {
            Some(Value::Bool(wanted)) => value.is_null() != *wanted,
            _ => o == value,
        }),
        _ => pattern == value,
    }
}
