//! [`ObjectBlobs`]: a [`BlobStore`] in an S3-compatible bucket
//! (`object_store`), for the team server's stateless replicas: blob `abcd…`
//! is the object `PREFIX/ab/cd…`. The endpoint and credentials come from the
//! standard variables (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`).
//!
//! A request the bucket does not answer fails after a few seconds with
//! [`StorageError::Unavailable`] (the HTTP layer's 503) instead of waiting
//! out the client's long default retries; the next request tries again.

use crate::storage::{BlobStore, StorageError, StorageResult};
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, PutPayload, RetryConfig};
use std::time::Duration;

/// Where blobs live: `s3://BUCKET[/PREFIX]` parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketUrl {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket (may be empty).
    pub prefix: String,
}

impl BucketUrl {
    /// Parse `s3://BUCKET[/PREFIX]`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| {
            format!("`{url}` is not an s3:// URL: pass --blobs s3://BUCKET[/PREFIX]")
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!(
                "`{url}` names no bucket: pass --blobs s3://BUCKET[/PREFIX]"
            ));
        }
        Ok(Self {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }
}

impl std::fmt::Display for BucketUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Blobs as objects of an S3-compatible bucket (see the module docs).
#[derive(Debug, Clone)]
pub struct ObjectBlobs {
    store: std::sync::Arc<AmazonS3>,
    url: BucketUrl,
    runtime: tokio::runtime::Handle,
}

/// A failed bucket request: a missing object is a corrupt server (500); any
/// other failure (refused, timed out, 5xx, throttled) may pass (503).
fn object_error(what: &str, name: &str, e: object_store::Error) -> StorageError {
    match e {
        object_store::Error::NotFound { .. } => {
            StorageError::Internal(format!("cannot {what} blob {name}: it is missing"))
        }
        e => StorageError::Unavailable(format!("cannot {what} blob {name}: {e}")),
    }
}

impl ObjectBlobs {
    /// A client for `url` configured from the `AWS_*` variables; calls are
    /// driven on `runtime` (the blocking [`BlobStore`] methods must be
    /// called outside it, from blocking threads). Nothing is contacted yet:
    /// [`ObjectBlobs::check`] does that.
    pub fn new(url: BucketUrl, runtime: tokio::runtime::Handle) -> Result<Self, String> {
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                base: 2.0,
            },
            max_retries: 2,
            retry_timeout: Duration::from_secs(5),
        };
        let options = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            .with_timeout(Duration::from_secs(120));
        // The variables go on top of the timeouts (`from_env` then
        // `with_client_options` would drop AWS_ALLOW_HTTP).
        let mut builder = AmazonS3Builder::new()
            .with_client_options(options)
            .with_retry(retry);
        for (key, value) in std::env::vars() {
            if key.starts_with("AWS_")
                && let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>()
            {
                builder = builder.with_config(key, value);
            }
        }
        let store = builder
            .with_bucket_name(&url.bucket)
            .build()
            .map_err(|e| {
                format!(
                    "cannot use {url}: {e}; set AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (AWS_ALLOW_HTTP=true for a plain-http endpoint)"
                )
            })?;
        Ok(Self {
            store: std::sync::Arc::new(store),
            url,
            runtime,
        })
    }

    fn path(&self, name: &str) -> ObjectPath {
        let (shard, rest) = match (name.get(..2), name.get(2..)) {
            (Some(shard), Some(rest)) if !rest.is_empty() => (shard, rest),
            _ => ("", name),
        };
        let key = [self.url.prefix.as_str(), shard, rest]
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("/");
        ObjectPath::from(key)
    }

    fn prefix(&self) -> Option<ObjectPath> {
        (!self.url.prefix.is_empty()).then(|| ObjectPath::from(self.url.prefix.as_str()))
    }

    /// Make sure the bucket exists and the credentials may list it: a start-up
    /// check and the readiness probe. The error says what to fix.
    pub async fn check(&self) -> StorageResult<()> {
        let url = &self.url;
        match self.store.list_with_delimiter(self.prefix().as_ref()).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = e.to_string();
                let hint = if text.contains("NoSuchBucket") {
                    format!("the bucket `{}` does not exist: create it", url.bucket)
                } else if text.contains("InvalidAccessKeyId")
                    || text.contains("SignatureDoesNotMatch")
                    || text.contains("AccessDenied")
                    || text.contains("403")
                {
                    "the bucket refused the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".to_string()
                } else {
                    "cannot reach the object store: check AWS_ENDPOINT_URL and that it runs"
                        .to_string()
                };
                Err(StorageError::Unavailable(format!("{url}: {hint} ({text})")))
            }
        }
    }

    async fn put_async(&self, name: &str, bytes: &[u8]) -> StorageResult<()> {
        let payload = PutPayload::from(bytes::Bytes::copy_from_slice(bytes));
        self.store
            .put(&self.path(name), payload)
            .await
            .map(|_| ())
            .map_err(|e| object_error("write", name, e))
    }

    async fn read_async(&self, name: &str, offset: u64, len: u64) -> StorageResult<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let got = self
            .store
            .get_range(&self.path(name), offset..offset + len)
            .await
            .map_err(|e| object_error("read", name, e))?;
        if got.len() as u64 != len {
            return Err(StorageError::Internal(format!(
                "cannot read blob {name}: it holds fewer than {len} bytes from offset {offset}"
            )));
        }
        Ok(got.to_vec())
    }

    async fn delete_async(&self, name: &str) -> StorageResult<()> {
        match self.store.delete(&self.path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(object_error("delete", name, e)),
        }
    }

    async fn written_before_async(
        &self,
        before: std::time::SystemTime,
    ) -> StorageResult<Vec<String>> {
        let listed: Vec<object_store::ObjectMeta> = self
            .store
            .list(self.prefix().as_ref())
            .try_collect()
            .await
            .map_err(|e| object_error("list", "objects", e))?;
        let skip = self.url.prefix.split('/').filter(|p| !p.is_empty()).count();
        Ok(listed
            .into_iter()
            .filter(|m| std::time::SystemTime::from(m.last_modified) < before)
            .filter_map(|m| {
                let parts: Vec<String> = m
                    .location
                    .parts()
                    .skip(skip)
                    .map(|p| p.as_ref().to_string())
                    .collect();
                match parts.as_slice() {
                    [shard, rest] if shard.len() == 2 => Some(format!("{shard}{rest}")),
                    _ => None,
                }
            })
            .collect())
    }
}

impl BlobStore for ObjectBlobs {
    fn put(&self, name: &str, bytes: &[u8]) -> StorageResult<()> {
        self.runtime.block_on(self.put_async(name, bytes))
    }

    fn read(&self, name: &str, offset: u64, len: u64) -> StorageResult<Vec<u8>> {
        self.runtime.block_on(self.read_async(name, offset, len))
    }

    fn delete(&self, name: &str) -> StorageResult<()> {
        self.runtime.block_on(self.delete_async(name))
    }

    fn written_before(&self, before: std::time::SystemTime) -> StorageResult<Vec<String>> {
        self.runtime.block_on(self.written_before_async(before))
    }

    fn check(&self) -> StorageResult<()> {
        self.runtime.block_on(ObjectBlobs::check(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_urls() {
        assert_eq!(
            BucketUrl::parse("s3://b/team/x/").unwrap(),
            BucketUrl {
                bucket: "b".into(),
                prefix: "team/x".into()
            }
        );
        assert_eq!(BucketUrl::parse("s3://b").unwrap().prefix, "");
        assert!(BucketUrl::parse("http://b").is_err());
        assert!(BucketUrl::parse("s3:///x").is_err());
    }
}
