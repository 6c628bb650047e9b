//! How the table's items hold JSON: deflated, against a preset dictionary.
//!
//! Why: DynamoDB bills a write per kilobyte of the whole item (the larger of before and
//! after), and the items a save rewrites (the lanes item with its resident executions and the
//! save's events, an execution's own item) are a few kilobytes of JSON each. Deflate alone
//! spends most of a small document on spelling out its keys once; a dictionary of the keys
//! and fixed strings Baton writes takes that away. A save's events may also be deflated
//! against the executions written on the same item ("bases"): they repeat the execution's
//! ids, artifact keys and configuration, and the stream record that carries the events shows
//! those executions too, so the relay rebuilds the same dictionary from the record alone.
//!
//! The format, from the first byte:
//! - [`MARK`] or [`MARK_V1`], then the number of bases (one byte), each base's attribute name
//!   (one byte of length, then the name), then raw deflate against that mark's dictionary
//!   followed by the bases' texts in order. [`MARK`] (what is written now) deflates against
//!   [`PROVIDER_TEXT`] then [`DICTIONARY`]; [`MARK_V1`] (items written before) against
//!   [`DICTIONARY`] alone;
//! - anything else: raw deflate without a dictionary, as items written before this format.
//!   A raw deflate stream never starts with either mark: its block type bits would be 11,
//!   which deflate reserves.
//!
//! The dictionaries are part of the stored format: items written with one are read with it
//! for as long as they live. Never edit them; a better one gets a new mark.

use std::io;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The first byte of a blob deflated against [`PROVIDER_TEXT`] and [`DICTIONARY`].
pub const MARK: u8 = 0x07;

/// The first byte of a blob deflated against [`DICTIONARY`] alone (written before [`MARK`]).
pub const MARK_V1: u8 = 0x06;

/// Inflated text larger than this is refused: items are at most 400 KB deflated, and no
/// document Baton writes comes near it inflated.
const MAX_TEXT_BYTES: usize = 64 * 1024 * 1024;

/// What the providers write into an execution, for any user: the configuration keys and
/// values of CodePipeline's action types, the summaries and console links of the actions'
/// ends, the ARNs and revision kinds they name. Why: a release's execution spends most of its
/// deflated bytes spelling these out once, and an item under 1 KB is half the write units of
/// one just over it. Read before [`DICTIONARY`], so the rarer text is the farther back.
pub const PROVIDER_TEXT: &str = concat!(
    // Configuration keys and values, by action type.
    r#"{"RepositoryName":"","BranchName":"main","PollForSourceChanges":"false","OutputArtifactFormat":"CODE_ZIP","ConnectionArn":"arn:aws:codeconnections:","FullRepositoryId":"","DetectChanges":"true","ImageTag":"latest","#,
    r#""S3Bucket":"","S3ObjectKey":"","ProjectName":"","PrimarySource":"","BatchEnabled":"false","EnvironmentVariables":"[{\"name\":\"\",\"value\":\"\",\"type\":\"PLAINTEXT\"}]","#,
    r#""ActionMode":"CREATE_UPDATE","ActionMode":"CHANGE_SET_REPLACE","ActionMode":"CHANGE_SET_EXECUTE","ActionMode":"REPLACE_ON_FAILURE","ActionMode":"DELETE_ONLY","StackName":"","ChangeSetName":"","TemplatePath":"::template.yaml","TemplateConfiguration":"::","OutputFileName":"","Capabilities":"CAPABILITY_IAM,CAPABILITY_NAMED_IAM,CAPABILITY_AUTO_EXPAND","ParameterOverrides":"{}","RoleArn":"arn:aws:iam:::role/","#,
    r#""ClusterName":"","ServiceName":"","FileName":"imagedefinitions.json","DeploymentTimeout":"","ApplicationName":"","DeploymentGroupName":"","EnvironmentName":"","BucketName":"","Extract":"true","ObjectKey":"","KMSEncryptionKeyARN":"","CannedACL":"","CacheControl":"","#,
    r#""FunctionName":"","UserParameters":"","StateMachineArn":"arn:aws:states:","ExecutionNamePrefix":"","InputType":"Literal","Input":"","CustomData":"","ExternalEntityLink":"https://","NotificationArn":"arn:aws:sns:"}"#,
    // What the actions' ends say, and where their consoles show them.
    r#"{"summary":"Fetched s3://","external_url":"https://.console.aws.amazon.com/s3/object/?region=&prefix="}"#,
    r#"{"summary":"Build  succeeded","external_id":":","external_url":"https://.console.aws.amazon.com/codesuite/codebuild/projects//build/%3A/?region="}"#,
    r#"{"summary":"Stack : CREATE_COMPLETE","summary":"Stack : UPDATE_COMPLETE","external_id":"arn:aws:cloudformation::stack//","external_url":"https://.console.aws.amazon.com/cloudformation/home?region=#/stacks/stackinfo?stackId=arn%3Aaws%3Acloudformation%3A%3A%3Astack%2F%2F"}"#,
    r#"{"summary":"Deployed  as  object(s) to s3://","external_url":"https://.console.aws.amazon.com/s3/buckets/?region=&prefix="}"#,
    r#"{"summary":" runs arn:aws:ecs::task-definition/:","external_id":"arn:aws:ecs::task-definition/:"}"#,
    r#"{"summary":"Deployment  succeeded","external_url":"https://.console.aws.amazon.com/codesuite/codedeploy/deployments/?region="}"#,
    r#"{"summary":"Execution  succeeded","external_url":"https://.console.aws.amazon.com/states/home?region=#/v2/executions/details/arn:aws:states::execution::"}"#,
    r#"{"external_url":"https://.console.aws.amazon.com/lambda/home?region=#/functions/","external_url":"https://.console.aws.amazon.com/codesuite/codecommit/repositories//commit/?region="}"#,
    // Triggers and revisions.
    r#"{"trigger_type":"CloudWatchEvent","trigger_type":"PollForSourceChanges","trigger_type":"Webhook","trigger_type":"WebhookV2","trigger_type":"PutActionRevision","trigger_type":"CreatePipeline","trigger_detail":"s3://?versionId=","revision_type":"S3_OBJECT_VERSION_ID","revision_type":"IMAGE_DIGEST","value":"sha256:"}"#,
    r#"{"decided_by":" (approval link)","output_variables":{"ETag":"","VersionId":"","CommitId":"","BranchName":"","AuthorDate":"","CommitMessage":""}}"#,
);

/// Keys and fixed strings of what Baton stores, the most frequent last (deflate reaches the
/// dictionary's end with the shortest distances). Pinned by a test: see the module's docs.
pub const DICTIONARY: &str = concat!(
    // The pipeline record: the declaration as CodePipeline spells it, and the plan.
    r#"{"declaration":{"name":"","roleArn":"arn:aws:iam::","artifactStore":{"type":"S3","location":"","encryptionKey":{"id":"","type":"KMS"}},"artifactStores":{"#,
    r#""stages":[{"name":"Source","actions":[{"name":"","actionTypeId":{"category":"Source","owner":"AWS","provider":"CodeStarSourceConnection","version":"1"},"runOrder":1,"configuration":{},"outputArtifacts":[{"name":""}],"inputArtifacts":[],"namespace":"","region":"","timeoutInMinutes":60}]}],"#,
    r#""version":1,"executionMode":"QUEUED","pipelineType":"V2","variables":[{"name":"","defaultValue":"","description":""}],"triggers":[{"providerType":"CodeStarSourceConnection","gitConfiguration":{"sourceActionName":"","push":[{"branches":{"includes":["main"]}}]}}]},"#,
    r#""plan":{"name":"","version":1,"mode":"SUPERSEDED","account":"","region":"us-east-1","event_source":"aws.codepipeline","variables":[],"stages":[{"name":"","actions":[{"name":"","#,
    r#""run_order":1,"namespace":null,"timeout_minutes":60,"groups":[[0]],"auto_retry":null,"conditions":{"rollback_on_failure":false}}]}]},"created":17,"updated":17}"#,
    // Approval links and running jobs.
    r#"{"id":"","approve_hash":"","reject_hash":"","expires":17,"created":17,"used":null}"#,
    r#"{"key":"CodeBuild#","request":{},"check_at":17}"#,
    // The lanes.
    r#"{"holders":[null],"waiting":[[]],"disabled":[null],"latest":[null],"arrivals":1}"#,
    // The worker's request, carried in an action's STARTED event.
    r#","baton-action-request":{"pipeline":"","pipeline_version":1,"execution_id":"","stage":"","action":"","attempt":1,"action_type":{"category":"Deploy","owner":"AWS","provider":"CloudFormation","version":"1"},"configuration":{},"commands":[],"input_artifacts":[{"name":"","location":{"bucket":"","key":""}}],"input_revisions":[["",""]],"output_artifacts":[],"region":"","role_arn":null,"pipeline_role_arn":"arn:aws:iam::","artifact_stores":[{"region":"us-east-1","bucket":"","kms_key":"arn:aws:kms:us-east-1:"}],"deadline":17,"token":null,"output_artifact_files":[],"output_variables":[],"environment_variables":[],"announce":{"source":"aws.codepipeline","account":"","home_region":"us-east-1","execution_attempt":1}}"#,
    // The public events a save emits.
    r#"[{"source":"aws.codepipeline","detail-type":"CodePipeline Pipeline Execution State Change","resources":["arn:aws:codepipeline:us-east-1:"],"detail":{"pipeline":"","execution-id":"","state":"SUCCEEDED","version":1,"pipeline-execution-attempt":1,"execution-trigger":{"trigger-type":"StartPipelineExecution","trigger-detail":""}}},"#,
    r#"{"source":"aws.codepipeline","detail-type":"CodePipeline Stage Execution State Change","resources":["arn:aws:codepipeline:us-east-1:"],"detail":{"pipeline":"","execution-id":"","state":"STARTED","version":1,"pipeline-execution-attempt":1,"stage":""}},"#,
    r#"{"source":"aws.codepipeline","detail-type":"CodePipeline Action Execution State Change","resources":["arn:aws:codepipeline:us-east-1:"],"detail":{"pipeline":"","execution-id":"","state":"STARTED","version":1,"pipeline-execution-attempt":1,"stage":"","action":"","region":"us-east-1","type":{"owner":"AWS","category":"Build","provider":"CodeBuild","version":1},"input-artifacts":[{"name":"","s3location":{"bucket":"","key":""}}],"output-artifacts":[],"execution-result":{"external-execution-url":"https://","external-execution-summary":"","external-execution-id":""}},"trace":"Root=1-;Sampled=1"}]"#,
    // An execution, as it stands in the lanes item and in its own item.
    r#"{"id":"","pipeline_version":1,"status":"InProgress","place":{"InStage":1},"status_summary":"","trigger":{"trigger_type":"StartPipelineExecution","trigger_detail":""},"variables":{},"arrival":1,"started_at":17,"updated_at":17,"#,
    r#""stages":[{"status":"Succeeded","attempt":1,"actions":[{"status":"Succeeded","attempt":1,"started_at":17,"updated_at":17,"deadline":17,"token":"","resolved_configuration":{},"output_variables":{},"summary":"","external_id":"","external_url":"https://","decided_by":"","#,
    r#""inputs":[{"name":"SourceOutput","location":{"bucket":"","key":"/SourceOutput/1.zip"}}],"outputs":[{"name":"BuildOutput","location":{"bucket":"","key":"/BuildOutput/1.zip"}}]}]}],"#,
    r#""outputs":{},"artifacts":{},"revisions":{},"source_revisions":{"":{"revision_type":"COMMIT_ID","value":""}}}"#,
);

/// `json` deflated against [`DICTIONARY`] and then `bases` (attribute name and text, each an
/// attribute of the item this blob goes on), at the best level: a few kilobytes take well
/// under a millisecond, and each kilobyte saved is a write unit.
///
/// # Errors
/// When a base's name is longer than 255 bytes, or deflate fails.
pub fn pack(json: &str, bases: &[(&str, &str)]) -> io::Result<Vec<u8>> {
    pack_with(MARK, json, bases)
}

/// [`pack`] against the dictionary of `mark`.
fn pack_with(mark: u8, json: &str, bases: &[(&str, &str)]) -> io::Result<Vec<u8>> {
    let mut out = vec![mark, u8::try_from(bases.len()).map_err(invalid)?];
    for (name, _) in bases {
        out.push(u8::try_from(name.len()).map_err(invalid)?);
        out.extend_from_slice(name.as_bytes());
    }
    let mut deflate = Compress::new(Compression::best(), false);
    let preset = dictionary(mark, bases.iter().map(|(_, text)| *text));
    deflate.set_dictionary(&preset).map_err(invalid)?;
    out.reserve(json.len() / 3 + 64);
    let input = json.as_bytes();
    loop {
        let read = usize::try_from(deflate.total_in()).map_err(invalid)?;
        match deflate.compress_vec(&input[read..], &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => return Ok(out),
            Ok(_) => out.reserve(out.capacity().max(256)),
            Err(e) => return Err(invalid(e)),
        }
    }
}

/// The names of the bases a blob was deflated against (none for one without).
///
/// # Errors
/// When the blob's header is cut short or a name is not UTF-8.
pub fn bases(bytes: &[u8]) -> io::Result<Vec<&str>> {
    Ok(header(bytes)?.1)
}

/// The text of a blob; `base` gives the text of a base attribute it names.
///
/// # Errors
/// When the blob does not inflate, names a base `base` does not give, or is not UTF-8.
pub fn unpack(bytes: &[u8], base: impl Fn(&str) -> io::Result<String>) -> io::Result<String> {
    let (mark, names, body) = header(bytes)?;
    let mut inflate = Decompress::new(false);
    if let Some(mark) = mark {
        let texts = names.iter().map(|name| base(name)).collect::<io::Result<Vec<String>>>()?;
        let preset = dictionary(mark, texts.iter().map(String::as_str));
        inflate.set_dictionary(&preset).map_err(invalid)?;
    }
    let mut out = Vec::with_capacity(body.len() * 4 + 64);
    loop {
        let read = usize::try_from(inflate.total_in()).map_err(invalid)?;
        let before = out.len();
        match inflate.decompress_vec(&body[read..], &mut out, FlushDecompress::Finish) {
            Ok(Status::StreamEnd) => break,
            Ok(_) if out.len() == out.capacity() && out.len() < MAX_TEXT_BYTES => {
                out.reserve(out.len());
            }
            // Neither input taken nor output made: the stream is cut short.
            Ok(_) if out.len() == before && inflate.total_in() as usize == read => {
                return Err(invalid("the deflated text ends early"));
            }
            Ok(_) if out.len() >= MAX_TEXT_BYTES => return Err(invalid("the text is too large")),
            Ok(_) => {}
            Err(e) => return Err(invalid(e)),
        }
    }
    String::from_utf8(out).map_err(invalid)
}

/// The text of a blob that names no bases.
///
/// # Errors
/// As [`unpack`]; also when the blob names a base.
pub fn unpack_alone(bytes: &[u8]) -> io::Result<String> {
    unpack(bytes, |name| Err(invalid(format!("a base `{name}` where none can be"))))
}

/// The mark (none for plain deflate), the base names and the deflate stream of a blob.
fn header(bytes: &[u8]) -> io::Result<(Option<u8>, Vec<&str>, &[u8])> {
    let Some(&mark @ (MARK | MARK_V1)) = bytes.first() else {
        return Ok((None, Vec::new(), bytes));
    };
    let short = || invalid("the packed header is cut short");
    let count = *bytes.get(1).ok_or_else(short)?;
    let mut at = 2;
    let mut names = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let len = usize::from(*bytes.get(at).ok_or_else(short)?);
        let name = bytes.get(at + 1..at + 1 + len).ok_or_else(short)?;
        names.push(std::str::from_utf8(name).map_err(invalid)?);
        at += 1 + len;
    }
    Ok((Some(mark), names, &bytes[at..]))
}

/// The preset dictionary of `mark`: [`PROVIDER_TEXT`] (for [`MARK`]) and [`DICTIONARY`], then
/// the bases in order (deflate uses its last 32 KB).
fn dictionary<'a>(mark: u8, bases: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut all = Vec::new();
    if mark == MARK {
        all.extend_from_slice(PROVIDER_TEXT.as_bytes());
    }
    all.extend_from_slice(DICTIONARY.as_bytes());
    for text in bases {
        all.extend_from_slice(text.as_bytes());
    }
    all
}

fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    const EXECUTION: &str = r#"{"id":"8d8ca7db-599b-4fc2-97c1-4347124190e5","pipeline_version":1,"status":"InProgress","place":{"InStage":1},"trigger":{"trigger_type":"StartPipelineExecution","trigger_detail":"cli"},"arrival":0,"started_at":1796669806779,"updated_at":1796669807089,"stages":[{"status":"Succeeded","attempt":1,"actions":[{"status":"Succeeded","attempt":1,"started_at":1796669806779,"updated_at":1796669807089,"resolved_configuration":{"S3Bucket":"team-source","S3ObjectKey":"app/source.zip"},"outputs":[{"name":"SourceOutput","location":{"bucket":"team-artifacts-us-east-1","key":"release/8d8ca7db-599b-4fc2-97c1-4347124190e5/SourceOutput/1.zip"}}]}]}],"artifacts":{"SourceOutput":{"bucket":"team-artifacts-us-east-1","key":"release/8d8ca7db-599b-4fc2-97c1-4347124190e5/SourceOutput/1.zip"}}}"#;
    const EVENTS: &str = r#"[{"source":"aws.codepipeline","detail-type":"CodePipeline Stage Execution State Change","resources":["arn:aws:codepipeline:us-east-1:123456789012:release"],"detail":{"pipeline":"release","execution-id":"8d8ca7db-599b-4fc2-97c1-4347124190e5","state":"STARTED","version":1,"pipeline-execution-attempt":1,"stage":"Build"}},{"source":"aws.codepipeline","detail-type":"CodePipeline Action Execution State Change","resources":["arn:aws:codepipeline:us-east-1:123456789012:release"],"detail":{"pipeline":"release","execution-id":"8d8ca7db-599b-4fc2-97c1-4347124190e5","state":"STARTED","version":1,"pipeline-execution-attempt":1,"stage":"Build","action":"Compile","region":"us-east-1","type":{"owner":"AWS","category":"Build","provider":"CodeBuild","version":1},"input-artifacts":[{"name":"SourceOutput","s3location":{"bucket":"team-artifacts-us-east-1","key":"release/8d8ca7db-599b-4fc2-97c1-4347124190e5/SourceOutput/1.zip"}}]}}]"#;

    fn deflated(text: &str) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::best());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_blob_reads_back_as_written_and_is_smaller_than_plain_deflate() {
        let blob = pack(EXECUTION, &[]).unwrap();
        assert_eq!(unpack_alone(&blob).unwrap(), EXECUTION);
        let plain = deflated(EXECUTION).len();
        assert!(blob.len() * 10 < plain * 8, "{} bytes against {plain} without", blob.len());
    }

    #[test]
    fn events_deflated_against_their_execution_need_it_back_and_are_smaller() {
        let blob = pack(EVENTS, &[("x:8d8ca7db", EXECUTION)]).unwrap();
        assert_eq!(bases(&blob).unwrap(), ["x:8d8ca7db"]);
        let back = unpack(&blob, |name| {
            assert_eq!(name, "x:8d8ca7db");
            Ok(EXECUTION.to_owned())
        });
        assert_eq!(back.unwrap(), EVENTS);
        assert!(unpack_alone(&blob).is_err(), "without its base the blob does not read");
        let alone = pack(EVENTS, &[]).unwrap().len();
        assert!(blob.len() < alone, "{} bytes against {alone} without the base", blob.len());
    }

    #[test]
    fn blobs_written_against_the_first_dictionary_still_read() {
        let v1 = pack_with(MARK_V1, EVENTS, &[("x:e", EXECUTION)]).unwrap();
        assert_eq!(v1[0], MARK_V1);
        assert_eq!(bases(&v1).unwrap(), ["x:e"]);
        assert_eq!(unpack(&v1, |_| Ok(EXECUTION.to_owned())).unwrap(), EVENTS);
        let now = pack(EVENTS, &[("x:e", EXECUTION)]).unwrap();
        assert_eq!(now[0], MARK);
        assert_ne!(v1, now, "each is read with its own dictionary");
    }

    /// The providers' own text (configuration keys, summaries, console links) costs a
    /// fraction of what it cost against the first dictionary.
    #[test]
    fn an_execution_with_the_providers_text_packs_smaller_than_against_the_first_dictionary() {
        let ended = r#"{"id":"8d8ca7db-599b-4fc2-97c1-4347124190e5","stages":[{"status":"Succeeded","attempt":1,"actions":[{"status":"Succeeded","attempt":1,"resolved_configuration":{"ActionMode":"CREATE_UPDATE","StackName":"web","TemplatePath":"BuildOutput::template.yaml","RoleArn":"arn:aws:iam::222222222222:role/deploy"},"summary":"Stack web: CREATE_COMPLETE","external_id":"arn:aws:cloudformation:eu-west-1:222222222222:stack/web/1f5b5bee-9b6a-4aae-9f93-04a428a176c6","external_url":"https://eu-west-1.console.aws.amazon.com/cloudformation/home?region=eu-west-1#/stacks/stackinfo?stackId=arn%3Aaws%3Acloudformation%3Aeu-west-1%3A222222222222%3Astack%2Fweb%2F1f5b5bee-9b6a-4aae-9f93-04a428a176c6"}]}]}"#;
        let now = pack(ended, &[]).unwrap();
        let v1 = pack_with(MARK_V1, ended, &[]).unwrap();
        assert_eq!(unpack_alone(&now).unwrap(), ended);
        assert!(now.len() + 40 < v1.len(), "{} bytes against {} before", now.len(), v1.len());
    }

    #[test]
    fn blobs_written_before_the_dictionary_still_read() {
        assert_eq!(unpack_alone(&deflated(EXECUTION)).unwrap(), EXECUTION);
        assert_ne!(deflated(EXECUTION)[0], MARK, "plain deflate never starts with a mark");
        assert_ne!(deflated(EXECUTION)[0], MARK_V1);
    }

    #[test]
    fn cut_or_corrupt_blobs_are_errors() {
        let blob = pack(EXECUTION, &[]).unwrap();
        assert!(unpack_alone(&blob[..blob.len() / 2]).is_err());
        assert!(unpack_alone(&[MARK]).is_err());
        assert!(unpack_alone(&[MARK, 1, 9, b'x']).is_err());
        assert!(unpack_alone(&[MARK, 0, 0xff, 0xff, 0xff]).is_err());
    }

    /// A damaged item gives an error, never a panic or a loop: arbitrary bytes, with either
    /// mark and without one, and every cut of a good blob.
    #[test]
    fn arbitrary_bytes_never_panic_or_hang() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..2_000 {
            let len = (next() % 300) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 && !bytes.is_empty() {
                bytes[0] = if round % 4 == 0 { MARK } else { MARK_V1 };
                if bytes.len() > 1 {
                    bytes[1] %= 3;
                }
            }
            let _ = unpack(&bytes, |_| Ok(EXECUTION.to_owned()));
        }
        let blob = pack(EVENTS, &[("x", EXECUTION)]).unwrap();
        for cut in 0..blob.len() {
            assert!(unpack(&blob[..cut], |_| Ok(EXECUTION.to_owned())).is_err(), "cut at {cut}");
        }
    }

    /// Items written with the dictionary are read with it for as long as they live.
    #[test]
    fn the_dictionaries_are_never_edited() {
        let pin = |text: &str| {
            let digest = text
                .bytes()
                .fold(2_166_136_261_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(16_777_619));
            (text.len(), digest)
        };
        assert_eq!(pin(DICTIONARY), (3917, 2_967_271_661), "see the module's docs");
        assert_eq!(pin(PROVIDER_TEXT), (2932, 3_429_543_209), "see the module's docs");
    }
}
