//! Encrypted artifact files (envelope encryption, AES-256-GCM), one folder per region.
//!
//! # Layout
//!
//! ```text
//! <home>/keys/<region>.key                     the region's master key: 32 random bytes, 0600
//! <home>/artifacts/<region>/<pipeline>/<execution_id>/<artifact>/<attempt>.zip
//! ```
//!
//! The keys folder is 0700. A master key is created on first use and refused if its file is
//! readable by anyone but its owner or is not exactly 32 bytes long.
//!
//! # File format `BATONAF1`
//!
//! ```text
//! offset  length  field
//!      0       8  magic "BATONAF1"
//!      8      48  data key wrapped by the master key (32 bytes ciphertext ‖ 16 bytes tag)
//!     56      12  wrap nonce
//!     68       8  stream nonce prefix
//!     76     ...  chunks: AES-256-GCM(data key, 64 KiB of plaintext) ‖ 16-byte tag, the last
//!                 one shorter (possibly empty: 16 bytes of tag only)
//! ```
//!
//! # Why
//!
//! - **Envelope encryption.** Each artifact has a fresh random data key, so one region's master
//!   key encrypts only 32-byte keys, never bulk data, and re-keying an artifact for another
//!   region rewraps nothing but the copy. The wrap's associated data binds the region and the
//!   object key, so a file moved to another key or region fails its check.
//! - **Streaming.** Memory is one chunk whatever the artifact's size. The chunks follow the
//!   STREAM construction: chunk `i`'s nonce is `prefix ‖ u32be(i)`, with the top bit of the
//!   counter set on the last chunk only, and every chunk authenticates the whole header. So a
//!   flipped bit, a dropped, swapped, duplicated or appended chunk, or a truncation at a chunk
//!   boundary (the new last chunk was not sealed as last) all fail.
//! - **All or nothing.** Writes go to a temporary file in the destination's folder, renamed
//!   into place only once complete (and, for [`get`](ArtifactStore::get), only once every
//!   chunk and the final marker verified), so no reader ever sees half an artifact.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, UnboundKey};
use baton_core::engine::ArtifactLocation;

use baton_app::ports::artifacts::{ArtifactError, ArtifactKey, ArtifactStore};
use baton_app::providers::is_small_file;

/// The first eight bytes of every artifact file.
pub const MAGIC: &[u8; 8] = b"BATONAF1";
/// Plaintext bytes per chunk (every chunk but the last is exactly this long).
pub const CHUNK_LEN: usize = 64 * 1024;
/// Bytes of the GCM tag after each chunk's ciphertext.
pub const TAG_LEN: usize = 16;
/// Bytes of the header before the first chunk.
pub const HEADER_LEN: usize = MAGIC.len() + WRAPPED_KEY_LEN + NONCE_LEN + PREFIX_LEN;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const PREFIX_LEN: usize = 8;
const WRAPPED_KEY_LEN: usize = KEY_LEN + TAG_LEN;
const SEALED_CHUNK_LEN: usize = CHUNK_LEN + TAG_LEN;
/// Set in the chunk counter of the last chunk (so at most 2^31 chunks, 128 TiB).
const LAST_CHUNK: u32 = 1 << 31;
/// Domain separation for the data key wrap's associated data.
const WRAP_CONTEXT: &[u8] = b"BATONAF1 data key\0";

const WRAPPED_AT: usize = MAGIC.len();
const WRAP_NONCE_AT: usize = WRAPPED_AT + WRAPPED_KEY_LEN;
const PREFIX_AT: usize = WRAP_NONCE_AT + NONCE_LEN;

/// An [`ArtifactStore`] in a folder on this machine, one encrypted file per artifact.
pub struct FileArtifactStore {
    inner: Arc<Inner>,
}

struct Inner {
    artifacts: PathBuf,
    keys: PathBuf,
    /// Master keys already read, by region.
    masters: Mutex<HashMap<String, Aes256Gcm>>,
}

impl fmt::Debug for FileArtifactStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileArtifactStore")
            .field("artifacts", &self.inner.artifacts)
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

impl FileArtifactStore {
    /// Opens (creating if needed) the store under `home`: artifacts in `<home>/artifacts`,
    /// master keys in `<home>/keys` (which must be private to its owner).
    pub fn open(home: &Path) -> Result<Self, ArtifactError> {
        let artifacts = home.join("artifacts");
        let keys = home.join("keys");
        fs::create_dir_all(&artifacts).map_err(unavailable)?;
        ensure_private_dir(&keys).map_err(unavailable)?;
        let masters = Mutex::new(HashMap::new());
        Ok(Self { inner: Arc::new(Inner { artifacts, keys, masters }) })
    }
}

#[async_trait]
impl ArtifactStore for FileArtifactStore {
    async fn put(
        &self,
        region: &str,
        key: &ArtifactKey,
        source: &Path,
    ) -> Result<ArtifactLocation, ArtifactError> {
        let (inner, region, key, source) =
            (self.inner.clone(), region.to_owned(), key.clone(), source.to_owned());
        blocking(move || inner.put(&region, &key, &source)).await
    }

    async fn get(
        &self,
        region: &str,
        location: &ArtifactLocation,
        dest: &Path,
    ) -> Result<(), ArtifactError> {
        if self.inner.is_small(region, location) {
            return self.inner.get(region, location, dest);
        }
        let (inner, region, location, dest) =
            (self.inner.clone(), region.to_owned(), location.clone(), dest.to_owned());
        blocking(move || inner.get(&region, &location, &dest)).await
    }

    async fn get_or_hold(
        &self,
        region: &str,
        location: &ArtifactLocation,
        dest: &Path,
    ) -> Result<Option<Vec<u8>>, ArtifactError> {
        if self.inner.is_small(region, location) {
            return self.inner.get_bytes(region, location).map(Some);
        }
        self.get(region, location, dest).await.map(|()| None)
    }

    async fn copy_to_region(
        &self,
        from_region: &str,
        location: &ArtifactLocation,
        to_region: &str,
    ) -> Result<ArtifactLocation, ArtifactError> {
        let (inner, from, location, to) =
            (self.inner.clone(), from_region.to_owned(), location.clone(), to_region.to_owned());
        blocking(move || inner.copy_to_region(&from, &location, &to)).await
    }

    fn region_of(&self, location: &ArtifactLocation) -> Option<String> {
        location.bucket.strip_prefix("baton-local-").map(str::to_owned)
    }
}

impl Inner {
    fn put(
        &self,
        region: &str,
        key: &ArtifactKey,
        source: &Path,
    ) -> Result<ArtifactLocation, ArtifactError> {
        check_region(region)?;
        let object_key = object_key(key)?;
        let source = File::open(source).map_err(unavailable)?;
        let master = self.master_key(region)?;
        let path = self.object_path(region, &object_key);
        let (staged, out) = Staged::create_with_parents(&path).map_err(unavailable)?;
        let out = seal_plaintext(&master, &wrap_aad(region, &object_key), source, out)
            .map_err(|fault| fault.into_error(&object_key))?;
        staged.commit(out, &path).map_err(unavailable)?;
        Ok(ArtifactLocation { bucket: bucket(region), key: object_key })
    }

    fn get(
        &self,
        region: &str,
        location: &ArtifactLocation,
        dest: &Path,
    ) -> Result<(), ArtifactError> {
        let input = self.open_object(region, location)?;
        let master = self.master_key(region)?;
        let (staged, out) = Staged::create(dest).map_err(unavailable)?;
        let out = open_to_plaintext(&master, &wrap_aad(region, &location.key), input, out)
            .map_err(|fault| fault.into_error(&location.key))?;
        staged.reveal(out, dest).map_err(unavailable)
    }

    /// [`Inner::get`] into memory.
    fn get_bytes(
        &self,
        region: &str,
        location: &ArtifactLocation,
    ) -> Result<Vec<u8>, ArtifactError> {
        let input = self.open_object(region, location)?;
        let master = self.master_key(region)?;
        open_to_plaintext(&master, &wrap_aad(region, &location.key), input, Vec::new())
            .map_err(|fault| fault.into_error(&location.key))
    }

    fn copy_to_region(
        &self,
        from: &str,
        location: &ArtifactLocation,
        to: &str,
    ) -> Result<ArtifactLocation, ArtifactError> {
        let input = self.open_object(from, location)?;
        check_region(to)?;
        let destination = ArtifactLocation { bucket: bucket(to), key: location.key.clone() };
        if from == to {
            return Ok(destination);
        }
        let from_master = self.master_key(from)?;
        let to_master = self.master_key(to)?;
        let path = self.object_path(to, &location.key);
        let (staged, out) = Staged::create_with_parents(&path).map_err(unavailable)?;
        let out = Opener::new(&from_master, &wrap_aad(from, &location.key), input)
            .and_then(|opener| reseal(opener, &to_master, &wrap_aad(to, &location.key), out))
            .map_err(|fault| fault.into_error(&location.key))?;
        staged.commit(out, &path).map_err(unavailable)?;
        Ok(destination)
    }

    /// The stored file of a location in `region`, after checking the location names a valid
    /// object of that region's bucket.
    fn open_object(
        &self,
        region: &str,
        location: &ArtifactLocation,
    ) -> Result<File, ArtifactError> {
        check_region(region)?;
        if location.bucket != bucket(region) {
            return Err(ArtifactError::NotFound(location.key.clone()));
        }
        check_location_key(&location.key)?;
        match File::open(self.object_path(region, &location.key)) {
            Ok(file) => Ok(file),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Err(ArtifactError::NotFound(location.key.clone()))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Whether a valid location's stored file is small enough to read where it is needed.
    fn is_small(&self, region: &str, location: &ArtifactLocation) -> bool {
        check_region(region).is_ok()
            && check_location_key(&location.key).is_ok()
            && is_small_file(&self.object_path(region, &location.key))
    }

    fn object_path(&self, region: &str, object_key: &str) -> PathBuf {
        self.artifacts.join(region).join(object_key)
    }

    /// The region's master key, read (or created) once and then kept.
    fn master_key(&self, region: &str) -> Result<Aes256Gcm, ArtifactError> {
        let mut masters = self.masters.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(master) = masters.get(region) {
            return Ok(master.clone());
        }
        let path = self.keys.join(format!("{region}.key"));
        let bytes = load_or_create_master(&self.keys, &path).map_err(unavailable)?;
        let master = cipher(&bytes);
        masters.insert(region.to_owned(), master.clone());
        Ok(master)
    }
}

// ---------------------------------------------------------------------------------------------
// Names

/// The bucket of a region's store.
fn bucket(region: &str) -> String {
    format!("baton-local-{region}")
}

/// `<pipeline>/<execution_id>/<artifact>/<attempt>.zip`, refusing components that could
/// escape the region's folder.
fn object_key(key: &ArtifactKey) -> Result<String, ArtifactError> {
    for component in [&key.pipeline, &key.execution_id, &key.artifact] {
        check_component(component)?;
    }
    Ok(format!("{}/{}/{}/{}.zip", key.pipeline, key.execution_id, key.artifact, key.attempt))
}

fn check_component(component: &str) -> Result<(), ArtifactError> {
    let bad = component.is_empty()
        || component == "."
        || component.contains("..")
        || component.contains(['/', '\\', '\0']);
    if bad {
        return Err(invalid_input(format!("invalid artifact key component {component:?}")));
    }
    Ok(())
}

/// A region names a folder and a key file: letters, digits, `-` and `_` only.
fn check_region(region: &str) -> Result<(), ArtifactError> {
    let valid = !region.is_empty()
        && region.len() <= 64
        && region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid { Ok(()) } else { Err(ArtifactError::NotFound(format!("(region {region:?})"))) }
}

/// A location's key must be a relative path of plain components inside the region's folder.
fn check_location_key(key: &str) -> Result<(), ArtifactError> {
    let bad = key.starts_with('/')
        || key.contains("..")
        || key.contains(['\\', '\0'])
        || key.split('/').any(|segment| segment.is_empty() || segment == ".");
    if bad { Err(ArtifactError::NotFound(key.to_owned())) } else { Ok(()) }
}

/// What the data key wrap authenticates: which region and which object it belongs to.
fn wrap_aad(region: &str, object_key: &str) -> Vec<u8> {
    [WRAP_CONTEXT, region.as_bytes(), b"\0", object_key.as_bytes()].concat()
}

// ---------------------------------------------------------------------------------------------
// Master keys

/// Creates `dir` with mode 0700 unless it exists, and refuses it if others may access it.
fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let metadata = fs::metadata(dir)?;
    let mode = metadata.permissions().mode() & 0o777;
    if !metadata.is_dir() || mode & 0o077 != 0 {
        return Err(io::Error::new(
            ErrorKind::PermissionDenied,
            format!("key folder {} has mode {mode:o}; it must be 0700", dir.display()),
        ));
    }
    Ok(())
}

/// The master key `<keys>/<name>.key` (the keys folder 0700, the key 0600), created on first
/// use: for other encrypted files of the home (its secrets).
pub(crate) fn named_master_key(keys: &Path, name: &str) -> io::Result<Aes256Gcm> {
    ensure_private_dir(keys)?;
    Ok(cipher(&load_or_create_master(keys, &keys.join(format!("{name}.key")))?))
}

/// Reads the master key at `path`, or creates it. A new key is written in full to a private
/// temporary file and then hard-linked into place, which fails if the name exists: two
/// processes never clobber each other's key, and no one ever reads a half-written one.
fn load_or_create_master(dir: &Path, path: &Path) -> io::Result<[u8; KEY_LEN]> {
    match read_master(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        read => return read,
    }
    let key: [u8; KEY_LEN] = random()?;
    let (staged, mut file) = Staged::create_in(dir, path_name(path)?, 0o600)?;
    file.write_all(&key)?;
    file.sync_all()?;
    drop(file);
    match fs::hard_link(&staged.path, path) {
        Ok(()) => {
            sync_dir(dir)?;
            Ok(key)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => read_master(path),
        Err(e) => Err(e),
    }
}

/// Reads a master key, refusing a file others may read or of the wrong length.
fn read_master(path: &Path) -> io::Result<[u8; KEY_LEN]> {
    let mut file = File::open(path)?;
    let metadata = file.metadata()?;
    let mode = metadata.permissions().mode() & 0o777;
    if !metadata.is_file() || mode & !0o600 != 0 {
        return Err(io::Error::new(
            ErrorKind::PermissionDenied,
            format!("master key {} has mode {mode:o}; refusing it (must be 0600)", path.display()),
        ));
    }
    if metadata.len() != KEY_LEN as u64 {
        return Err(io::Error::new(
            ErrorKind::InvalidData,
            format!(
                "master key {} is {} bytes long, not {KEY_LEN}",
                path.display(),
                metadata.len()
            ),
        ));
    }
    let mut key = [0; KEY_LEN];
    file.read_exact(&mut key)?;
    Ok(key)
}

// ---------------------------------------------------------------------------------------------
// The format

/// Why a stream could not be sealed or opened.
#[derive(Debug)]
enum Fault {
    /// Reading or writing failed: the data may be fine.
    Io(io::Error),
    /// The data failed a check: it cannot be trusted.
    Tampered,
}

impl From<io::Error> for Fault {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl Fault {
    fn into_error(self, object_key: &str) -> ArtifactError {
        match self {
            Self::Io(e) => unavailable(e),
            Self::Tampered => ArtifactError::Tampered(object_key.to_owned()),
        }
    }
}

fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

/// The cipher of an artifact's chunks: the same AES-256-GCM, from aws-lc, whose GHASH is
/// several times faster on the gigabytes an artifact may hold.
fn data_cipher(key: &[u8; KEY_LEN]) -> Result<LessSafeKey, Fault> {
    let key = UnboundKey::new(&AES_256_GCM, key)
        .map_err(|_| io::Error::other("cannot use the data key"))?;
    Ok(LessSafeKey::new(key))
}

fn chunk_nonce_of(nonce: [u8; NONCE_LEN]) -> aws_lc_rs::aead::Nonce {
    aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce)
}

/// Writes a header with a fresh data key wrapped by `master` and returns the header and the
/// data key's cipher.
fn write_header(
    master: &Aes256Gcm,
    wrap_aad: &[u8],
    out: &mut File,
) -> Result<([u8; HEADER_LEN], LessSafeKey), Fault> {
    let data_key: [u8; KEY_LEN] = random()?;
    let wrap_nonce: [u8; NONCE_LEN] = random()?;
    let prefix: [u8; PREFIX_LEN] = random()?;
    let mut wrapped = data_key;
    let tag = master
        .encrypt_in_place_detached(Nonce::from_slice(&wrap_nonce), wrap_aad, &mut wrapped)
        .map_err(|_| io::Error::other("cannot wrap the data key"))?;
    let mut header = [0; HEADER_LEN];
    header[..WRAPPED_AT].copy_from_slice(MAGIC);
    header[WRAPPED_AT..WRAPPED_AT + KEY_LEN].copy_from_slice(&wrapped);
    header[WRAPPED_AT + KEY_LEN..WRAP_NONCE_AT].copy_from_slice(&tag);
    header[WRAP_NONCE_AT..PREFIX_AT].copy_from_slice(&wrap_nonce);
    header[PREFIX_AT..].copy_from_slice(&prefix);
    out.write_all(&header)?;
    Ok((header, data_cipher(&data_key)?))
}

/// Reads a header and unwraps its data key with `master`.
fn read_header(
    master: &Aes256Gcm,
    wrap_aad: &[u8],
    input: &mut impl Read,
) -> Result<([u8; HEADER_LEN], LessSafeKey), Fault> {
    let mut header = [0; HEADER_LEN];
    if read_full(input, &mut header)? < HEADER_LEN || &header[..WRAPPED_AT] != MAGIC {
        return Err(Fault::Tampered);
    }
    let mut data_key = [0; KEY_LEN];
    data_key.copy_from_slice(&header[WRAPPED_AT..WRAPPED_AT + KEY_LEN]);
    let tag = Tag::from_slice(&header[WRAPPED_AT + KEY_LEN..WRAP_NONCE_AT]);
    let nonce = Nonce::from_slice(&header[WRAP_NONCE_AT..PREFIX_AT]);
    master
        .decrypt_in_place_detached(nonce, wrap_aad, &mut data_key, tag)
        .map_err(|_| Fault::Tampered)?;
    Ok((header, data_cipher(&data_key)?))
}

/// Chunk `counter`'s nonce: the header's prefix, then the counter with its top bit set on the
/// last chunk. `None` past 2^31 chunks.
fn chunk_nonce(header: &[u8; HEADER_LEN], counter: u32, last: bool) -> Option<[u8; NONCE_LEN]> {
    if counter >= LAST_CHUNK {
        return None;
    }
    let counter = if last { counter | LAST_CHUNK } else { counter };
    let mut nonce = [0; NONCE_LEN];
    nonce[..PREFIX_LEN].copy_from_slice(&header[PREFIX_AT..]);
    nonce[PREFIX_LEN..].copy_from_slice(&counter.to_be_bytes());
    Some(nonce)
}

/// Encrypts chunks into a file, after its header.
struct Sealer {
    header: [u8; HEADER_LEN],
    cipher: LessSafeKey,
    counter: u32,
    out: File,
}

impl Sealer {
    fn new(master: &Aes256Gcm, wrap_aad: &[u8], mut out: File) -> Result<Self, Fault> {
        let (header, cipher) = write_header(master, wrap_aad, &mut out)?;
        Ok(Self { header, cipher, counter: 0, out })
    }

    /// Seals the plaintext in `chunk` (at most [`CHUNK_LEN`] bytes) and writes it.
    fn seal(&mut self, chunk: &mut Vec<u8>, last: bool) -> Result<(), Fault> {
        let too_large = || io::Error::other("artifact too large");
        let nonce = chunk_nonce(&self.header, self.counter, last).ok_or_else(too_large)?;
        let tag = self
            .cipher
            .seal_in_place_separate_tag(chunk_nonce_of(nonce), Aad::from(&self.header), chunk)
            .map_err(|_| too_large())?;
        chunk.extend_from_slice(tag.as_ref());
        self.out.write_all(chunk)?;
        self.counter += 1;
        Ok(())
    }

    fn finish(self) -> File {
        self.out
    }
}

/// Reads and verifies chunks from a file, after its header.
struct Opener<R> {
    header: [u8; HEADER_LEN],
    cipher: LessSafeKey,
    counter: u32,
    input: BufReader<R>,
}

impl<R: Read> Opener<R> {
    fn new(master: &Aes256Gcm, wrap_aad: &[u8], input: R) -> Result<Self, Fault> {
        let mut input = BufReader::new(input);
        let (header, cipher) = read_header(master, wrap_aad, &mut input)?;
        Ok(Self { header, cipher, counter: 0, input })
    }

    /// Reads the next chunk into `chunk` as verified plaintext; `true` if it was the last.
    /// A chunk is the last when the file ends with it, and it only verifies if it was sealed
    /// as the last.
    fn open(&mut self, chunk: &mut Vec<u8>) -> Result<bool, Fault> {
        chunk.resize(SEALED_CHUNK_LEN, 0);
        let len = read_full(&mut self.input, chunk)?;
        if len < TAG_LEN {
            return Err(Fault::Tampered);
        }
        let last = len < SEALED_CHUNK_LEN || self.input.fill_buf()?.is_empty();
        let nonce = chunk_nonce(&self.header, self.counter, last).ok_or(Fault::Tampered)?;
        self.cipher
            .open_in_place(chunk_nonce_of(nonce), Aad::from(&self.header), &mut chunk[..len])
            .map_err(|_| Fault::Tampered)?;
        chunk.truncate(len - TAG_LEN);
        self.counter += 1;
        Ok(last)
    }
}

/// Encrypts all of `source` into `out`.
fn seal_plaintext(
    master: &Aes256Gcm,
    wrap_aad: &[u8],
    source: File,
    out: File,
) -> Result<File, Fault> {
    let mut source = BufReader::new(source);
    let mut sealer = Sealer::new(master, wrap_aad, out)?;
    let mut chunk = Vec::with_capacity(SEALED_CHUNK_LEN);
    loop {
        chunk.resize(CHUNK_LEN, 0);
        let len = read_full(&mut source, &mut chunk)?;
        chunk.truncate(len);
        let last = len < CHUNK_LEN || source.fill_buf()?.is_empty();
        sealer.seal(&mut chunk, last)?;
        if last {
            return Ok(sealer.finish());
        }
    }
}

/// Verifies and decrypts all of `input` into `out`.
fn open_to_plaintext<W: Write>(
    master: &Aes256Gcm,
    wrap_aad: &[u8],
    input: File,
    mut out: W,
) -> Result<W, Fault> {
    let mut opener = Opener::new(master, wrap_aad, input)?;
    let mut chunk = Vec::with_capacity(SEALED_CHUNK_LEN);
    loop {
        let last = opener.open(&mut chunk)?;
        out.write_all(&chunk)?;
        if last {
            return Ok(out);
        }
    }
}

/// Re-encrypts every chunk `opener` verifies under a fresh data key wrapped by `master`.
fn reseal(
    mut opener: Opener<File>,
    master: &Aes256Gcm,
    wrap_aad: &[u8],
    out: File,
) -> Result<File, Fault> {
    let mut sealer = Sealer::new(master, wrap_aad, out)?;
    let mut chunk = Vec::with_capacity(SEALED_CHUNK_LEN);
    loop {
        let last = opener.open(&mut chunk)?;
        sealer.seal(&mut chunk, last)?;
        if last {
            return Ok(sealer.finish());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Files

/// A temporary file next to its final name, removed on drop unless committed.
struct Staged {
    path: PathBuf,
    committed: bool,
}

impl Staged {
    /// A temporary file in `dest`'s folder.
    fn create(dest: &Path) -> io::Result<(Self, File)> {
        let dir = match dest.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        Self::create_in(dir, path_name(dest)?, 0o666)
    }

    /// A temporary file in `dest`'s folder, creating the folder if needed.
    fn create_with_parents(dest: &Path) -> io::Result<(Self, File)> {
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir)?;
        }
        Self::create(dest)
    }

    /// A new file `.<name>.<random>.tmp` in `dir`, with `mode` (before the umask).
    fn create_in(dir: &Path, name: &OsStr, mode: u32) -> io::Result<(Self, File)> {
        let suffix: [u8; 8] = random()?;
        let mut file_name = std::ffi::OsString::from(".");
        file_name.push(name);
        file_name.push(format!(".{}.tmp", hex::encode(suffix)));
        let path = dir.join(file_name);
        let file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&path)?;
        Ok((Self { path, committed: false }, file))
    }

    /// Flushes `file` to disk and renames it to `dest`.
    fn commit(mut self, file: File, dest: &Path) -> io::Result<()> {
        file.sync_all()?;
        drop(file);
        fs::rename(&self.path, dest)?;
        self.committed = true;
        match dest.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
            _ => Ok(()),
        }
    }
}

impl Staged {
    /// Renames `file` to `dest` without flushing it: for a copy handed out (an action's input,
    /// a download), which the stored object outlives. The rename still keeps a half-written
    /// copy out of sight; the two flushes `commit` makes are for the store's own objects.
    fn reveal(mut self, file: File, dest: &Path) -> io::Result<()> {
        drop(file);
        fs::rename(&self.path, dest)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn path_name(path: &Path) -> io::Result<&OsStr> {
    path.file_name().ok_or_else(|| {
        io::Error::new(ErrorKind::InvalidInput, format!("{} names no file", path.display()))
    })
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

pub(crate) fn random<const N: usize>() -> io::Result<[u8; N]> {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    Ok(bytes)
}

// ---------------------------------------------------------------------------------------------
// Errors and threads

fn unavailable(e: io::Error) -> ArtifactError {
    ArtifactError::Unavailable(Box::new(e))
}

fn invalid_input(message: String) -> ArtifactError {
    unavailable(io::Error::new(ErrorKind::InvalidInput, message))
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ArtifactError> + Send + 'static,
) -> Result<T, ArtifactError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ArtifactError::Unavailable(Box::new(e)))?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A chunk sealed by aws-lc opens under RustCrypto's AES-256-GCM, which sealed the
    /// artifacts stored before, and the other way round: the format did not change.
    #[test]
    fn a_chunk_is_the_same_aes_gcm_whichever_library_seals_it() {
        let key = [7u8; KEY_LEN];
        let header = [3u8; HEADER_LEN];
        let nonce = chunk_nonce(&header, 0, true).unwrap();
        let plain = b"artifact bytes".to_vec();

        let mut sealed = plain.clone();
        let tag = data_cipher(&key)
            .unwrap()
            .seal_in_place_separate_tag(chunk_nonce_of(nonce), Aad::from(&header), &mut sealed)
            .unwrap();
        assert_ne!(sealed, plain);
        let tag = Tag::from_slice(tag.as_ref());
        cipher(&key)
            .decrypt_in_place_detached(Nonce::from_slice(&nonce), &header, &mut sealed, tag)
            .unwrap();
        assert_eq!(sealed, plain);

        let mut sealed = plain.clone();
        let tag = cipher(&key)
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &header, &mut sealed)
            .unwrap();
        sealed.extend_from_slice(&tag);
        let opened = data_cipher(&key)
            .unwrap()
            .open_in_place(chunk_nonce_of(nonce), Aad::from(&header), &mut sealed)
            .unwrap();
        assert_eq!(opened, &plain[..]);
    }
}
