//! Parsing and checking object-store URLs, and building their clients.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;

use crate::error::{OupsError, Result};

/// The schemes oups accepts as object storage.
const SCHEMES: [&str; 7] = ["s3", "s3a", "gs", "az", "abfs", "abfss", "memory"];

/// Whether `text` names object storage (`s3://...`) rather than a path.
pub fn is_url(text: &str) -> bool {
    text.split_once("://")
        .is_some_and(|(scheme, _)| SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
}

/// A checked URL: its store (bucket or container) and the key prefix in it.
#[derive(Debug, Clone)]
pub struct Location {
    /// `scheme://bucket`, for messages and for building the client.
    pub base: String,
    pub scheme: String,
    pub bucket: String,
    /// The object key prefix, without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl Location {
    /// Parses `url`. Refused: unknown schemes, a missing bucket, and `.`, `..`
    /// or empty segments (a URL library would resolve `..` silently, and a key
    /// that escapes its prefix must never be written).
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |why: &str| {
            OupsError::InvalidArgument(format!("storage URL '{url}' is not valid: {why}"))
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad("it has no 'scheme://' (use s3://bucket/prefix)"));
        };
        let scheme = scheme.to_ascii_lowercase();
        if !SCHEMES.contains(&scheme.as_str()) {
            return Err(bad(&format!(
                "scheme '{scheme}' is not supported (use one of {})",
                SCHEMES.join(", ")
            )));
        }
        if rest.contains(['?', '#', '\\']) {
            return Err(bad(
                "it holds '?', '#' or '\\'; give options in 'storage_options'",
            ));
        }
        let (bucket, key) = match rest.split_once('/') {
            Some((b, k)) => (b, k.trim_end_matches('/')),
            None => (rest, ""),
        };
        if bucket.is_empty() && scheme != "memory" {
            return Err(bad("it names no bucket (s3://<bucket>/<prefix>)"));
        }
        if !key.is_empty() {
            for segment in key.split('/') {
                match segment {
                    "" => return Err(bad("it has an empty segment ('//')")),
                    "." | ".." => {
                        return Err(bad(&format!(
                            "segment '{segment}' is not allowed: keys never leave their prefix"
                        )))
                    }
                    _ => {}
                }
            }
        }
        Ok(Location {
            base: format!("{scheme}://{bucket}"),
            scheme,
            bucket: bucket.to_string(),
            prefix: key.to_string(),
        })
    }

    /// The full URL of `key` under this location's prefix.
    pub fn url_of(&self, key: &str) -> String {
        match (self.prefix.is_empty(), key.is_empty()) {
            (true, _) => format!("{}/{key}", self.base),
            (false, true) => format!("{}/{}", self.base, self.prefix),
            (false, false) => format!("{}/{}/{key}", self.base, self.prefix),
        }
    }

    /// The location of `child` (one or more `/`-separated segments) below this one.
    pub fn join(&self, child: &str) -> Result<Location> {
        Location::parse(&self.url_of(child))
    }

    /// The object path of `key` under the prefix.
    pub fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else if key.is_empty() {
            ObjectPath::from(self.prefix.as_str())
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    /// The last segment of the prefix and the location of its parent: a
    /// dataset's name and the prefix that holds it.
    pub fn split_name(&self) -> Result<(Location, String)> {
        let Some(name) = self.prefix.rsplit('/').next().filter(|n| !n.is_empty()) else {
            return Err(OupsError::InvalidArgument(format!(
                "storage URL '{}' names no dataset: add its name after the bucket \
                 (s3://bucket/<dataset>)",
                self.base
            )));
        };
        let parent = self.prefix[..self.prefix.len() - name.len()].trim_end_matches('/');
        Ok((
            Location {
                prefix: parent.to_string(),
                ..self.clone()
            },
            name.to_string(),
        ))
    }

    /// A client for this location's bucket: credentials and endpoint from the
    /// usual environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`), then
    /// `options`, which override them. Unknown option names are refused.
    pub fn client(&self, options: &BTreeMap<String, String>) -> Result<Arc<dyn ObjectStore>> {
        let url = self.base.clone();
        let unknown = |key: &str| {
            OupsError::InvalidArgument(format!(
                "'storage_options' key '{key}' is not known for {}:// URLs; use the names \
                 of delta-rs and obstore (for S3: aws_access_key_id, aws_secret_access_key, \
                 aws_region, aws_endpoint_url, aws_allow_http, ...)",
                self.scheme
            ))
        };
        let failed = |e: object_store::Error| {
            OupsError::InvalidArgument(format!(
                "cannot configure storage for '{url}': {e}; check 'storage_options' and the \
                 environment"
            ))
        };
        let (retry, options) = split_retry(options)?;
        let store: Arc<dyn ObjectStore> = match self.scheme.as_str() {
            "s3" | "s3a" => {
                use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
                use object_store::ClientConfigKey;
                let mut b = AmazonS3Builder::from_env()
                    .with_url(url.clone())
                    .with_retry(retry);
                let mut http = None;
                for (k, v) in &options {
                    let key: AmazonS3ConfigKey =
                        k.to_ascii_lowercase().parse().map_err(|_| unknown(k))?;
                    if key == AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp) {
                        http = Some(v.clone());
                    }
                    b = b.with_config(key, v.clone());
                }
                // An explicit http:// endpoint (a local server) means plain
                // HTTP is intended, unless the caller says otherwise.
                let endpoint = b.get_config_value(&AmazonS3ConfigKey::Endpoint);
                if http.is_none()
                    && std::env::var_os("AWS_ALLOW_HTTP").is_none()
                    && endpoint.is_some_and(|e| e.starts_with("http://"))
                {
                    b = b.with_allow_http(true);
                }
                Arc::new(b.build().map_err(failed)?)
            }
            "gs" => {
                use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
                let mut b = GoogleCloudStorageBuilder::from_env()
                    .with_url(url.clone())
                    .with_retry(retry);
                for (k, v) in &options {
                    let key: GoogleConfigKey =
                        k.to_ascii_lowercase().parse().map_err(|_| unknown(k))?;
                    b = b.with_config(key, v.clone());
                }
                Arc::new(b.build().map_err(failed)?)
            }
            "az" | "abfs" | "abfss" => {
                use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
                let mut b = MicrosoftAzureBuilder::from_env()
                    .with_url(url.clone())
                    .with_retry(retry);
                for (k, v) in &options {
                    let key: AzureConfigKey =
                        k.to_ascii_lowercase().parse().map_err(|_| unknown(k))?;
                    b = b.with_config(key, v.clone());
                }
                Arc::new(b.build().map_err(failed)?)
            }
            _ => {
                if let Some(k) = options.keys().next() {
                    return Err(unknown(k));
                }
                memory_store(&self.bucket)
            }
        };
        Ok(store)
    }
}

/// The client's retries, from the oups options `max_retries` (default 10) and
/// `retry_timeout` (seconds, default 180), and the other options.
fn split_retry(
    options: &BTreeMap<String, String>,
) -> Result<(object_store::RetryConfig, BTreeMap<String, String>)> {
    let mut retry = object_store::RetryConfig::default();
    let mut rest = BTreeMap::new();
    for (k, v) in options {
        let number = || {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| {
                    OupsError::InvalidArgument(format!(
                        "'storage_options' '{k}' must be a number >= 0, got '{v}'"
                    ))
                })
        };
        match k.to_ascii_lowercase().as_str() {
            "max_retries" => retry.max_retries = number()? as usize,
            "retry_timeout" => retry.retry_timeout = std::time::Duration::from_secs_f64(number()?),
            _ => {
                rest.insert(k.clone(), v.clone());
            }
        }
    }
    Ok((retry, rest))
}

/// In-memory stores by name, shared by every object of the process (a
/// `memory://name/...` URL opened twice sees the same objects).
fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    use std::sync::{Mutex, OnceLock};
    static STORES: OnceLock<Mutex<BTreeMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    Arc::clone(
        stores
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(object_store::memory::InMemory::new())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let l = Location::parse("s3://bkt/a/b/ds/").unwrap();
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("bkt", "a/b/ds"));
        let (parent, name) = l.split_name().unwrap();
        assert_eq!((parent.prefix.as_str(), name.as_str()), ("a/b", "ds"));
        assert_eq!(parent.url_of("ds_opdmd"), "s3://bkt/a/b/ds_opdmd");
        for bad in [
            "s3://bkt/a/../b",
            "s3://bkt/./b",
            "s3://bkt//b",
            "s3:///b",
            "ftp://x/y",
            "s3://bkt/a?x=1",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
        assert!(Location::parse("s3://bkt").unwrap().split_name().is_err());
        assert!(is_url("S3://b/k") && is_url("memory://x") && !is_url("/tmp/s3://x"));
    }
}
