//! Blocking calls to an object store, each counted, with their failures
//! turned into [`OupsError`]s that name the URL.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{
    GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    UpdateVersion,
};
use tokio::runtime::Runtime;

use super::Location;
use crate::error::{OupsError, Result, StorageFailure};

/// Uploads in flight at once.
const PARALLEL_REQUESTS: usize = 8;
/// Parts of a multipart upload; files above this size go in parts.
const PART_SIZE: usize = 16 << 20;
/// Ranges closer than this are fetched in one request.
const COALESCE: u64 = 1 << 20;

/// Requests issued through one storage, shared by its clones.
pub type Requests = Arc<AtomicU64>;

/// Outcome of a conditional creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// Created, with the new object's entity tag when the store gives one.
    New(Option<String>),
    /// An object was there already: nothing was written.
    Exists,
}

/// One location in one object store.
#[derive(Clone)]
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    pub location: Location,
    requests: Requests,
}

fn runtime() -> Arc<Runtime> {
    static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    match slot.as_ref() {
        Some((owner, rt)) if *owner == pid => Arc::clone(rt),
        stale => {
            // A runtime inherited through fork has no threads: leaked, never
            // dropped (dropping it would wait for threads that do not exist).
            if let Some((_, old)) = stale {
                std::mem::forget(Arc::clone(old));
            }
            let rt = Arc::new(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("oups-io")
                    .enable_all()
                    .build()
                    .expect("the I/O runtime starts"),
            );
            *slot = Some((pid, Arc::clone(&rt)));
            rt
        }
    }
}

fn failure(op: &'static str, url: String, e: object_store::Error) -> OupsError {
    use object_store::Error as E;
    let text = e.to_string();
    // With no credentials configured, the S3 client asks the instance
    // metadata service for some: failing that is a credentials problem.
    let no_credentials = text.contains("/latest/api/token") || text.contains("/latest/meta-data");
    let kind = match &e {
        _ if no_credentials => StorageFailure::Denied,
        E::NotFound { .. } => StorageFailure::NotFound,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => StorageFailure::Denied,
        _ if text.contains("NoSuchBucket") => StorageFailure::NotFound,
        _ if text.contains("AccessDenied")
            || text.contains("InvalidAccessKeyId")
            || text.contains("SignatureDoesNotMatch")
            || text.contains("credential") =>
        {
            StorageFailure::Denied
        }
        _ => StorageFailure::Other,
    };
    let message = match kind {
        StorageFailure::NotFound if text.contains("NoSuchBucket") => {
            "the bucket does not exist (create it, or check the URL)".to_string()
        }
        StorageFailure::Denied if no_credentials => format!(
            "no credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a \
             profile), or pass them in 'storage_options' (the instance metadata service, \
             tried last, did not answer: {text})"
        ),
        StorageFailure::Denied => format!(
            "access was refused: check the credentials (environment or 'storage_options'): {text}"
        ),
        _ => text,
    };
    OupsError::Storage {
        op,
        url,
        kind,
        message,
    }
}

impl ObjectStorage {
    /// A client for `location`, configured from the environment and `options`.
    pub fn open(location: Location, options: &BTreeMap<String, String>) -> Result<Self> {
        let store = location.client(options)?;
        Ok(ObjectStorage {
            store,
            location,
            requests: Arc::default(),
        })
    }

    /// The same store at `location` (sharing the client and the counter).
    pub fn at(&self, location: Location) -> Self {
        ObjectStorage {
            store: Arc::clone(&self.store),
            location,
            requests: Arc::clone(&self.requests),
        }
    }

    /// Requests issued so far through this storage and its clones.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self, n: u64) {
        self.requests.fetch_add(n, Ordering::Relaxed);
    }

    pub fn url(&self, key: &str) -> String {
        self.location.url_of(key)
    }

    fn path(&self, key: &str) -> ObjectPath {
        self.location.path(key)
    }

    fn block_on<T>(&self, f: impl std::future::Future<Output = T> + Send) -> T
    where
        T: Send,
    {
        runtime().block_on(f)
    }

    /// The object at `key` and its entity tag; `None` when there is none.
    pub fn get(&self, key: &str) -> Result<Option<(Bytes, Option<String>)>> {
        self.count(1);
        let path = self.path(key);
        let got = self.block_on(async {
            let r = self.store.get_opts(&path, GetOptions::default()).await?;
            let tag = r.meta.e_tag.clone();
            Ok::<_, object_store::Error>((r.bytes().await?, tag))
        });
        match got {
            Ok(v) => Ok(Some(v)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(failure("cannot read", self.url(key), e)),
        }
    }

    /// Several whole objects, fetched in parallel; `None` for a missing one.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>> {
        self.count(keys.len() as u64);
        let jobs: Vec<(String, ObjectPath)> =
            keys.iter().map(|k| (k.clone(), self.path(k))).collect();
        let store = Arc::clone(&self.store);
        self.block_on(async move {
            futures::stream::iter(jobs.into_iter().map(|(key, path)| {
                let store = Arc::clone(&store);
                async move {
                    let got = async { store.get(&path).await?.bytes().await }.await;
                    match got {
                        Ok(b) => Ok(Some(b)),
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(e) => Err((key, e)),
                    }
                }
            }))
            .buffered(PARALLEL_REQUESTS)
            .try_collect::<Vec<_>>()
            .await
        })
        .map_err(|(key, e): (String, object_store::Error)| {
            failure("cannot read", self.url(&key), e)
        })
    }

    /// The last `n` bytes of the object (all of it when shorter) and its size.
    pub fn get_suffix(&self, key: &str, n: u64) -> Result<(Bytes, u64)> {
        self.count(1);
        let path = self.path(key);
        let opts = GetOptions {
            range: Some(GetRange::Suffix(n)),
            ..Default::default()
        };
        self.block_on(async {
            let r = self.store.get_opts(&path, opts).await?;
            let size = r.meta.size;
            Ok::<_, object_store::Error>((r.bytes().await?, size))
        })
        .map_err(|e| failure("cannot read", self.url(key), e))
    }

    /// The given byte ranges of one object; ranges closer than 1 MiB are
    /// fetched in one request.
    pub fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let merged = merge_ranges(ranges);
        self.count(merged.len() as u64);
        let path = self.path(key);
        let fetched: Vec<Bytes> = self
            .block_on(async {
                futures::stream::iter(merged.iter().cloned())
                    .map(|r| self.store.get_range(&path, r))
                    .buffered(PARALLEL_REQUESTS)
                    .try_collect()
                    .await
            })
            .map_err(|e| failure("cannot read", self.url(key), e))?;
        Ok(ranges
            .iter()
            .map(|r| {
                let (i, m) = merged
                    .iter()
                    .enumerate()
                    .find(|(_, m)| m.start <= r.start && r.end <= m.end)
                    .expect("every range lies in a merged range");
                let at = (r.start - m.start) as usize;
                fetched[i].slice(at..at + (r.end - r.start) as usize)
            })
            .collect())
    }

    /// Writes `bytes` at `key` (replacing any object), in parts when large.
    pub fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.put_many(vec![(key.to_string(), bytes)])
    }

    /// [`Self::put`] of several objects, in parallel.
    pub fn put_many(&self, objects: Vec<(String, Bytes)>) -> Result<()> {
        let requests: u64 = objects
            .iter()
            .map(|(_, b)| {
                if b.len() > PART_SIZE {
                    2 + b.len().div_ceil(PART_SIZE) as u64
                } else {
                    1
                }
            })
            .sum();
        self.count(requests);
        let jobs: Vec<(String, ObjectPath, Bytes)> = objects
            .into_iter()
            .map(|(k, b)| {
                let p = self.path(&k);
                (k, p, b)
            })
            .collect();
        let store = Arc::clone(&self.store);
        self.block_on(async move {
            let mut pending = futures::stream::iter(jobs.into_iter().map(|(key, path, bytes)| {
                let store = Arc::clone(&store);
                async move {
                    upload(store.as_ref(), &path, bytes)
                        .await
                        .map_err(|e| (key, e))
                }
            }))
            .buffer_unordered(PARALLEL_REQUESTS);
            while let Some(r) = pending.next().await {
                r?;
            }
            Ok(())
        })
        .map_err(|(key, e): (String, object_store::Error)| {
            failure("cannot write", self.url(&key), e)
        })
    }

    /// Starts uploading `bytes` to `key` while the caller goes on (say,
    /// encoding the next file); [`Self::finish_puts`] waits for them.
    pub fn start_put(&self, key: String, bytes: Bytes) -> StartedPut {
        self.count(if bytes.len() > PART_SIZE {
            2 + bytes.len().div_ceil(PART_SIZE) as u64
        } else {
            1
        });
        let store = Arc::clone(&self.store);
        let path = self.path(&key);
        let handle = runtime().spawn(async move {
            // The permit bounds the uploads in flight, as `put_many` does.
            let _permit = upload_slots().acquire().await;
            upload(store.as_ref(), &path, bytes).await
        });
        StartedPut { key, handle }
    }

    /// Waits for uploads begun by [`Self::start_put`]; the first failure
    /// is returned once all have ended.
    pub fn finish_puts(&self, started: Vec<StartedPut>) -> Result<()> {
        self.block_on(async move {
            let mut first: Option<OupsError> = None;
            for put in started {
                let outcome = match put.handle.await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(failure("cannot write", self.url(&put.key), e)),
                    Err(e) => Some(OupsError::Internal(format!("an upload task failed: {e}"))),
                };
                if first.is_none() {
                    first = outcome;
                }
            }
            first.map_or(Ok(()), Err)
        })
    }

    /// Creates `key` only if no object is there: the conditional put
    /// (`If-None-Match: *`) that commits a version.
    pub fn create(&self, key: &str, bytes: Bytes) -> Result<Created> {
        self.count(1);
        let path = self.path(key);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self.block_on(self.store.put_opts(&path, PutPayload::from(bytes), opts)) {
            Ok(r) => Ok(Created::New(r.e_tag)),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(Created::Exists),
            Err(e) => Err(failure("cannot create", self.url(key), e)),
        }
    }

    /// Replaces `key` only if its entity tag is still `tag` (`If-Match`):
    /// the new tag, or `None` when another write came first.
    pub fn replace(&self, key: &str, bytes: Bytes, tag: &str) -> Result<Option<Option<String>>> {
        self.count(1);
        let path = self.path(key);
        let opts = PutOptions {
            mode: PutMode::Update(UpdateVersion {
                e_tag: Some(tag.to_string()),
                version: None,
            }),
            ..Default::default()
        };
        match self.block_on(self.store.put_opts(&path, PutPayload::from(bytes), opts)) {
            Ok(r) => Ok(Some(r.e_tag)),
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(failure("cannot write", self.url(key), e)),
        }
    }

    /// Every object under `prefix` (a key prefix ending in `/` for a
    /// "directory"), after `offset` when given, in key order.
    pub fn list(&self, prefix: &str, offset: Option<&str>) -> Result<Vec<ObjectMeta>> {
        let path = self.path(prefix.trim_end_matches('/'));
        let offset = offset.map(|o| self.path(o));
        let mut pages = 0u64;
        let listed: Vec<ObjectMeta> = self
            .block_on(async {
                let stream = match &offset {
                    Some(o) => self.store.list_with_offset(Some(&path), o),
                    None => self.store.list(Some(&path)),
                };
                stream.try_collect().await
            })
            .map_err(|e| failure("cannot list", self.url(prefix), e))?;
        pages += 1 + listed.len() as u64 / 1000;
        self.count(pages);
        let mut listed = listed;
        listed.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(listed)
    }

    /// The "directories" and objects directly under `prefix`: one listing
    /// with a delimiter, never every object below.
    pub fn list_dir(&self, prefix: &str) -> Result<(Vec<String>, Vec<ObjectMeta>)> {
        let trimmed = prefix.trim_end_matches('/');
        let path =
            (!trimmed.is_empty() || !self.location.prefix.is_empty()).then(|| self.path(trimmed));
        let listed = self
            .block_on(self.store.list_with_delimiter(path.as_ref()))
            .map_err(|e| failure("cannot list", self.url(prefix), e))?;
        self.count(1 + (listed.objects.len() + listed.common_prefixes.len()) as u64 / 1000);
        let dirs = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        Ok((dirs, listed.objects))
    }

    /// The key of `meta` relative to this storage's prefix.
    pub fn key_of(&self, meta: &ObjectMeta) -> String {
        let full = meta.location.as_ref();
        match self.location.prefix.as_str() {
            "" => full.to_string(),
            p => full
                .strip_prefix(p)
                .map(|k| k.trim_start_matches('/').to_string())
                .unwrap_or_else(|| full.to_string()),
        }
    }

    /// Deletes the objects (missing ones are no error), in bulk requests
    /// of up to 1,000 keys where the store has them (S3 `DeleteObjects`).
    pub fn delete_many(&self, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.count(keys.len().div_ceil(1000) as u64);
        let paths: Vec<object_store::Result<ObjectPath>> =
            keys.iter().map(|k| Ok(self.path(k))).collect();
        let store = Arc::clone(&self.store);
        self.block_on(async move {
            let mut deleted = store.delete_stream(futures::stream::iter(paths).boxed());
            while let Some(r) = deleted.next().await {
                match r {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
        .map_err(|e| failure("cannot delete", self.url(&keys[0]), e))
    }
}

/// One object, in parts when it is large.
/// An upload under way (see [`ObjectStorage::start_put`]).
pub struct StartedPut {
    key: String,
    handle: tokio::task::JoinHandle<std::result::Result<(), object_store::Error>>,
}

fn upload_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(PARALLEL_REQUESTS);
    &SLOTS
}

async fn upload(
    store: &dyn ObjectStore,
    path: &ObjectPath,
    bytes: Bytes,
) -> std::result::Result<(), object_store::Error> {
    if bytes.len() <= PART_SIZE {
        return store.put(path, PutPayload::from(bytes)).await.map(|_| ());
    }
    let parts = store.put_multipart(path).await?;
    let mut w = object_store::WriteMultipart::new_with_chunk_size(parts, PART_SIZE);
    w.put(bytes);
    w.finish().await.map(|_| ())
}

/// Sorted ranges with those closer than [`COALESCE`] merged.
fn merge_ranges(ranges: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut sorted: Vec<Range<u64>> = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in sorted {
        match out.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(COALESCE) => {
                last.end = last.end.max(r.end)
            }
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(name: &str) -> ObjectStorage {
        let loc = Location::parse(&format!("memory://{name}/root")).unwrap();
        ObjectStorage::open(loc, &BTreeMap::new()).unwrap()
    }

    #[test]
    fn create_is_exclusive_and_replace_checks_the_tag() {
        let s = memory("unit-create");
        let Created::New(tag) = s.create("a", Bytes::from_static(b"1")).unwrap() else {
            panic!("created")
        };
        assert_eq!(
            s.create("a", Bytes::from_static(b"2")).unwrap(),
            Created::Exists
        );
        assert!(s
            .replace("a", Bytes::from_static(b"3"), "nope")
            .unwrap()
            .is_none());
        assert!(s
            .replace("a", Bytes::from_static(b"4"), &tag.unwrap())
            .unwrap()
            .is_some());
        assert_eq!(s.get("a").unwrap().unwrap().0.as_ref(), b"4");
        assert!(s.get("missing").unwrap().is_none());
    }

    #[test]
    fn ranges_are_merged_and_sliced_back() {
        let s = memory("unit-ranges");
        let data: Vec<u8> = (0..=255).collect();
        s.put("f", Bytes::from(data.clone())).unwrap();
        let before = s.requests();
        let got = s.get_ranges("f", &[10..20, 0..5, 100..101]).unwrap();
        assert_eq!(s.requests() - before, 1);
        assert_eq!(got[0].as_ref(), &data[10..20]);
        assert_eq!(got[1].as_ref(), &data[0..5]);
        assert_eq!(got[2].as_ref(), &data[100..101]);
        let (tail, size) = s.get_suffix("f", 8).unwrap();
        assert_eq!((tail.as_ref(), size), (&data[248..], 256));
        s.put_many(vec![
            ("d/x".into(), Bytes::new()),
            ("d/y".into(), Bytes::new()),
        ])
        .unwrap();
        let (dirs, objects) = s.list_dir("").unwrap();
        assert_eq!(dirs, vec!["d".to_string()]);
        assert_eq!(objects.len(), 1);
        let listed = s.list("d/", Some("d/x")).unwrap();
        assert_eq!(
            listed.iter().map(|m| s.key_of(m)).collect::<Vec<_>>(),
            ["d/y"]
        );
        s.delete_many(&["d/x".into(), "d/none".into()]).unwrap();
        assert_eq!(s.list("d/", None).unwrap().len(), 1);
    }
}
