//! The file artifact store: round trips, encryption at rest, private per-region master keys,
//! and every kind of tampering detected without leaving a half-written destination.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use baton::adapters::local::file_artifacts::{CHUNK_LEN, FileArtifactStore, HEADER_LEN, TAG_LEN};
use baton::core::engine::ArtifactLocation;
use baton::ports::artifacts::{ArtifactError, ArtifactKey, ArtifactStore};
use proptest::prelude::*;
use tempfile::TempDir;

const SEALED: usize = CHUNK_LEN + TAG_LEN;
const US: &str = "us-east-1";
const EU: &str = "eu-west-1";

/// A store in a temporary home, with a scratch folder for sources and destinations.
struct Fixture {
    dir: TempDir,
    store: FileArtifactStore,
}

impl Fixture {
    fn new() -> Self {
        let dir = TempDir::new().unwrap();
        fs::create_dir(dir.path().join("scratch")).unwrap();
        fs::create_dir(dir.path().join("out")).unwrap();
        let store = FileArtifactStore::open(&dir.path().join("home")).unwrap();
        Self { dir, store }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn stored(&self, region: &str, location: &ArtifactLocation) -> PathBuf {
        self.home().join("artifacts").join(region).join(&location.key)
    }

    fn key_file(&self, region: &str) -> PathBuf {
        self.home().join("keys").join(format!("{region}.key"))
    }

    async fn put(&self, region: &str, name: &str, content: &[u8]) -> ArtifactLocation {
        let source = self.dir.path().join("scratch").join(name);
        fs::write(&source, content).unwrap();
        self.store.put(region, &key(name), &source).await.unwrap()
    }

    async fn get(
        &self,
        region: &str,
        location: &ArtifactLocation,
    ) -> Result<Vec<u8>, ArtifactError> {
        let dest = self.out().join("dest.zip");
        self.store.get(region, location, &dest).await?;
        let content = fs::read(&dest).unwrap();
        fs::remove_file(&dest).unwrap();
        Ok(content)
    }

    /// Rewrites the stored file, then checks `get` calls it tampered and leaves nothing behind.
    async fn assert_tampered_after(
        &self,
        region: &str,
        location: &ArtifactLocation,
        change: impl FnOnce(&mut Vec<u8>),
    ) {
        let path = self.stored(region, location);
        let mut bytes = fs::read(&path).unwrap();
        change(&mut bytes);
        fs::write(&path, &bytes).unwrap();
        match self.get(region, location).await {
            Err(ArtifactError::Tampered(key)) => assert_eq!(key, location.key),
            other => panic!("expected Tampered, got {other:?}"),
        }
        assert_eq!(fs::read_dir(self.out()).unwrap().count(), 0, "the destination folder is empty");
        // Read into memory, it fails the same check.
        match self.store.get_or_hold(region, location, &self.out().join("dest.zip")).await {
            Err(ArtifactError::Tampered(key)) => assert_eq!(key, location.key),
            other => panic!("expected Tampered, got {other:?}"),
        }
        assert_eq!(fs::read_dir(self.out()).unwrap().count(), 0, "the destination folder is empty");
    }
}

fn key(artifact: &str) -> ArtifactKey {
    ArtifactKey {
        pipeline: "app".into(),
        execution_id: "0d5c8c1e-exec".into(),
        artifact: artifact.into(),
        attempt: 1,
    }
}

/// `len` bytes that do not repeat with any short period.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

const MULTI: usize = 1024 * 1024 + 17;

#[tokio::test]
async fn round_trips_files_of_every_shape() {
    let fixture = Fixture::new();
    for (name, len) in [
        ("empty", 0),
        ("one", 1),
        ("chunk", CHUNK_LEN),
        ("chunk1", CHUNK_LEN + 1),
        ("multi", MULTI),
    ] {
        let plain = content(len, len as u64);
        let location = fixture.put(US, name, &plain).await;
        assert_eq!(location.bucket, "baton-local-us-east-1");
        assert_eq!(location.key, format!("app/0d5c8c1e-exec/{name}/1.zip"));
        assert_eq!(fixture.get(US, &location).await.unwrap(), plain, "{name}");
        let chunks = len.div_ceil(CHUNK_LEN).max(1);
        let stored = fs::metadata(fixture.stored(US, &location)).unwrap().len() as usize;
        assert_eq!(stored, HEADER_LEN + len + chunks * TAG_LEN, "{name}");
    }
}

#[tokio::test]
async fn the_stored_file_is_not_the_plaintext() {
    let fixture = Fixture::new();
    let plain: Vec<u8> =
        (0..200_000).flat_map(|i| format!("line {i} of the artifact\n").into_bytes()).collect();
    let location = fixture.put(US, "text", &plain).await;
    let stored = fs::read(fixture.stored(US, &location)).unwrap();
    let windows: HashSet<&[u8]> = stored.windows(16).collect();
    assert!(plain.windows(16).step_by(97).all(|needle| !windows.contains(needle)));

    let zeros = vec![0; 3 * CHUNK_LEN];
    let location = fixture.put(US, "zeros", &zeros).await;
    let stored = fs::read(fixture.stored(US, &location)).unwrap();
    assert!(!stored.windows(32).any(|w| w.iter().all(|&b| b == 0)));
    assert_eq!(fixture.get(US, &location).await.unwrap(), zeros);
}

#[tokio::test]
async fn the_master_key_is_private_and_reused_on_reopen() {
    let fixture = Fixture::new();
    let location = fixture.put(US, "a", b"hello").await;
    let key_file = fixture.key_file(US);
    assert_eq!(fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    let keys_dir = fixture.home().join("keys");
    assert_eq!(fs::metadata(&keys_dir).unwrap().permissions().mode() & 0o777, 0o700);
    let master = fs::read(&key_file).unwrap();
    assert_eq!(master.len(), 32);

    let reopened = FileArtifactStore::open(&fixture.home()).unwrap();
    let dest = fixture.out().join("again.zip");
    reopened.get(US, &location, &dest).await.unwrap();
    assert_eq!(fs::read(&dest).unwrap(), b"hello");
    assert_eq!(fs::read(&key_file).unwrap(), master);
}

#[tokio::test]
async fn a_master_key_readable_by_others_or_of_the_wrong_length_is_refused() {
    let fixture = Fixture::new();
    fixture.put(US, "a", b"hello").await;
    let key_file = fixture.key_file(US);

    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o644)).unwrap();
    let reopened = FileArtifactStore::open(&fixture.home()).unwrap();
    let source = fixture.dir.path().join("scratch").join("a");
    let refused = reopened.put(US, &key("b"), &source).await;
    assert!(matches!(refused, Err(ArtifactError::Unavailable(_))), "{refused:?}");

    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&key_file, [7; 31]).unwrap();
    let reopened = FileArtifactStore::open(&fixture.home()).unwrap();
    let refused = reopened.put(US, &key("b"), &source).await;
    assert!(matches!(refused, Err(ArtifactError::Unavailable(_))), "{refused:?}");

    let keys_dir = fixture.home().join("keys");
    fs::set_permissions(&keys_dir, fs::Permissions::from_mode(0o755)).unwrap();
    let refused = FileArtifactStore::open(&fixture.home());
    assert!(matches!(refused, Err(ArtifactError::Unavailable(_))), "{refused:?}");
}

#[tokio::test]
async fn keys_are_per_region() {
    let fixture = Fixture::new();
    fixture.put(US, "a", b"one").await;
    fixture.put(EU, "a", b"one").await;
    let (us, eu) =
        (fs::read(fixture.key_file(US)).unwrap(), fs::read(fixture.key_file(EU)).unwrap());
    assert_eq!((us.len(), eu.len()), (32, 32));
    assert_ne!(us, eu);
}

#[tokio::test]
async fn an_unknown_object_or_another_regions_bucket_is_not_found() {
    let fixture = Fixture::new();
    let location = fixture.put(US, "a", b"one").await;
    let missing = ArtifactLocation { key: "app/none/a/1.zip".into(), ..location.clone() };
    assert!(matches!(fixture.get(US, &missing).await, Err(ArtifactError::NotFound(_))));
    assert!(matches!(fixture.get(EU, &location).await, Err(ArtifactError::NotFound(_))));
    let wrong_bucket = ArtifactLocation { bucket: "baton-local-eu-west-1".into(), ..location };
    assert!(matches!(fixture.get(US, &wrong_bucket).await, Err(ArtifactError::NotFound(_))));
    assert_eq!(fs::read_dir(fixture.out()).unwrap().count(), 0);
}

#[tokio::test]
async fn paths_outside_the_store_are_refused() {
    let fixture = Fixture::new();
    fixture.put(US, "a", b"one").await;
    fs::write(fixture.home().join("secret"), b"x").unwrap();
    let bucket = "baton-local-us-east-1".to_owned();
    for key in ["../../secret", "app/../../../secret", "/etc/passwd", "app//a/1.zip", "app\\a"] {
        let location = ArtifactLocation { bucket: bucket.clone(), key: key.into() };
        let refused = fixture.get(US, &location).await;
        assert!(matches!(refused, Err(ArtifactError::NotFound(_))), "{key}: {refused:?}");
    }
    let source = fixture.dir.path().join("scratch").join("a");
    for bad in ["..", "a/b", "a\\b", "a\0b", "", "."] {
        let mut escaping = key("a");
        escaping.pipeline = bad.into();
        assert!(fixture.store.put(US, &escaping, &source).await.is_err(), "{bad:?}");
        let mut escaping = key(bad);
        escaping.execution_id = "e".into();
        assert!(fixture.store.put(US, &escaping, &source).await.is_err(), "{bad:?}");
    }
    assert!(fixture.store.put("../us", &key("a"), &source).await.is_err());
    let names: Vec<_> =
        fs::read_dir(fixture.home()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 3, "only artifacts, keys and the planted secret: {names:?}");
}

#[tokio::test]
async fn a_flipped_byte_anywhere_is_tampering() {
    let fixture = Fixture::new();
    let plain = content(2 * CHUNK_LEN + 5, 1);
    let location = fixture.put(US, "a", &plain).await;
    let stored = fs::read(fixture.stored(US, &location)).unwrap();
    let places = [
        ("magic", 0),
        ("wrapped key", 8),
        ("wrapped key tag", 8 + 40),
        ("wrap nonce", 56),
        ("stream prefix", HEADER_LEN - 1),
        ("first chunk", HEADER_LEN + 100),
        ("first tag", HEADER_LEN + SEALED - 1),
        ("last chunk", stored.len() - TAG_LEN - 1),
        ("last tag", stored.len() - 1),
    ];
    for (what, at) in places {
        fs::write(fixture.stored(US, &location), &stored).unwrap();
        assert_eq!(fixture.get(US, &location).await.unwrap(), plain, "{what}");
        fixture.assert_tampered_after(US, &location, |bytes| bytes[at] ^= 0x01).await;
    }
}

#[tokio::test]
async fn dropped_swapped_duplicated_and_appended_chunks_are_tampering() {
    let fixture = Fixture::new();
    let plain = content(2 * CHUNK_LEN + 5, 2);
    let location = fixture.put(US, "a", &plain).await;
    let stored = fs::read(fixture.stored(US, &location)).unwrap();
    let chunk =
        |i: usize| HEADER_LEN + i * SEALED..(HEADER_LEN + (i + 1) * SEALED).min(stored.len());
    type Change = Box<dyn FnOnce(&mut Vec<u8>)>;
    let (first, second, last) = (chunk(0), chunk(1), chunk(2));
    let changes: Vec<(&str, Change)> = vec![
        ("drop the last chunk", Box::new(move |b| b.truncate(last.start))),
        ("drop every chunk", Box::new(|b| b.truncate(HEADER_LEN))),
        ("cut inside the header", Box::new(|b| b.truncate(HEADER_LEN - 1))),
        ("cut inside the last chunk", Box::new(|b| b.truncate(b.len() - 1))),
        ("swap two chunks", {
            let (first, second) = (first.clone(), second.clone());
            Box::new(move |b| {
                let (a, c) = (b[first.clone()].to_vec(), b[second.clone()].to_vec());
                b[first].copy_from_slice(&c);
                b[second].copy_from_slice(&a);
            })
        }),
        ("duplicate a chunk", {
            let first = first.clone();
            Box::new(move |b| {
                let copy = b[first.clone()].to_vec();
                b.splice(first.end..first.end, copy);
            })
        }),
        ("append the last chunk again", {
            let last = chunk(2);
            Box::new(move |b| {
                let copy = b[last].to_vec();
                b.extend_from_slice(&copy);
            })
        }),
        ("append a byte", Box::new(|b| b.push(0))),
        ("empty file", Box::new(|b| b.clear())),
    ];
    for (what, change) in changes {
        fs::write(fixture.stored(US, &location), &stored).unwrap();
        assert_eq!(fixture.get(US, &location).await.unwrap(), plain, "{what}");
        fixture.assert_tampered_after(US, &location, change).await;
    }
}

#[tokio::test]
async fn dropping_the_last_of_whole_chunks_is_tampering() {
    let fixture = Fixture::new();
    let location = fixture.put(US, "a", &content(2 * CHUNK_LEN, 3)).await;
    fixture.assert_tampered_after(US, &location, |b| b.truncate(HEADER_LEN + SEALED)).await;
}

#[tokio::test]
async fn a_file_under_another_master_key_or_object_key_is_tampering() {
    let fixture = Fixture::new();
    let location = fixture.put(US, "a", b"the real artifact").await;

    // The same object in another region of the same store.
    fixture.put(EU, "a", b"an impostor").await;
    let from_eu = fs::read(fixture.stored(EU, &location)).unwrap();
    fixture.assert_tampered_after(US, &location, |b| *b = from_eu).await;

    // The same region and object in another store: a different master key.
    let other = Fixture::new();
    let location_there = other.put(US, "a", b"an impostor").await;
    assert_eq!(location_there, location);
    let from_other = fs::read(other.stored(US, &location)).unwrap();
    fixture.assert_tampered_after(US, &location, |b| *b = from_other).await;

    // Another object of the same region and store.
    let sibling = fixture.put(US, "b", b"an impostor").await;
    let from_sibling = fs::read(fixture.stored(US, &sibling)).unwrap();
    fixture.assert_tampered_after(US, &location, |b| *b = from_sibling).await;
}

#[tokio::test]
async fn copy_to_region_reencrypts_for_the_destination() {
    let fixture = Fixture::new();
    let plain = content(CHUNK_LEN * 3 + 1234, 4);
    let location = fixture.put(US, "a", &plain).await;
    let copied = fixture.store.copy_to_region(US, &location, EU).await.unwrap();
    assert_eq!(
        copied,
        ArtifactLocation { bucket: "baton-local-eu-west-1".into(), key: location.key.clone() }
    );
    assert_eq!(fixture.get(EU, &copied).await.unwrap(), plain);
    assert_eq!(fixture.get(US, &location).await.unwrap(), plain);

    let (source, copy) = (
        fs::read(fixture.stored(US, &location)).unwrap(),
        fs::read(fixture.stored(EU, &copied)).unwrap(),
    );
    assert_eq!(source.len(), copy.len());
    assert_ne!(source[8..HEADER_LEN], copy[8..HEADER_LEN], "a fresh data key and nonces");
    assert_ne!(source[HEADER_LEN..HEADER_LEN + 64], copy[HEADER_LEN..HEADER_LEN + 64]);

    // A tampered source is never copied.
    let mut bytes = source;
    bytes[HEADER_LEN + 5] ^= 0x80;
    fs::write(fixture.stored(US, &location), &bytes).unwrap();
    let refused = fixture.store.copy_to_region(US, &location, "ap-south-1").await;
    assert!(matches!(refused, Err(ArtifactError::Tampered(_))), "{refused:?}");
    assert!(!fixture.stored("ap-south-1", &location).exists());
    let missing = ArtifactLocation { key: "app/none/a/1.zip".into(), ..location };
    let refused = fixture.store.copy_to_region(US, &missing, EU).await;
    assert!(matches!(refused, Err(ArtifactError::NotFound(_))), "{refused:?}");
}

fn round_trip(len: usize, seed: u64) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let fixture = Fixture::new();
        let plain = content(len, seed);
        let location = fixture.put(US, "p", &plain).await;
        prop_assert_eq!(fixture.get(US, &location).await.unwrap(), plain);
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn round_trips_of_any_size(len in 0usize..300_000, seed in any::<u64>()) {
        round_trip(len, seed)?;
    }
}

#[tokio::test]
async fn the_file_store_keeps_the_artifact_store_contract() {
    let home = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let store =
        baton::adapters::local::file_artifacts::FileArtifactStore::open(home.path()).unwrap();
    baton_testkit::artifact_store_contract(&store, "us-east-1", "eu-west-1", scratch.path()).await;
}
