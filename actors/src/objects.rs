//! Object storage: public generated images (share codes) and private
//! uploaded photos. Local (default): kept in the store (files beside a
//! sled store, rows in PostgreSQL, so every node serves them); public ones
//! are served under `/files/`, private ones only by the uploads route after
//! its own check. Qiniu: form upload with
//! an upload token (put policy JSON, URL-safe base64, HMAC-SHA1 with the
//! secret key); a private photo is read through a download URL signed for
//! a few minutes, so the bucket itself can stay private.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::domain::{ObjectKey, StoredObject, Visibility};
use crate::storage::ObjectRepo;
use crate::wechat::Secret;

/// How long an upload token stays valid.
const UPLOAD_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// How long a signed download URL of a private photo stays valid.
const PRIVATE_URL_LIFETIME: Duration = Duration::from_secs(300);

/// A failed upload.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ObjectError {
    /// The key is not a safe file name.
    #[error("bad object key")]
    BadKey,
    /// Disk or network failure.
    #[error("object storage failed: {0}")]
    Io(String),
}

/// Where a private object is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateObject {
    /// Its bytes, to be answered by the service itself.
    Bytes(Vec<u8>),
    /// A URL signed for a few minutes, to redirect to.
    Signed(String),
}

/// Where images go.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Stores `bytes` under `key`; answers the public URL.
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<String, ObjectError>;

    /// Stores `bytes` under `key` where nobody can read them unasked.
    async fn put_private(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ObjectError>;

    /// A private object, for a reader the caller has already checked.
    async fn get_private(&self, key: &str) -> Result<PrivateObject, ObjectError>;

    /// A public object the service serves itself under `/files/` (`None`
    /// when it has no such object or keeps none: a bucket serves them).
    async fn get_public(&self, _key: &str) -> Result<Option<StoredObject>, ObjectError> {
        Ok(None)
    }
}

/// Keys are flat file names: `[A-Za-z0-9._-]`, no leading dot.
pub fn valid_key(key: &str) -> bool {
    ObjectKey::parse(key).is_ok()
}

fn parse_key(key: &str) -> Result<ObjectKey, ObjectError> {
    ObjectKey::parse(key).map_err(|_| ObjectError::BadKey)
}

/// Objects the service keeps itself, in its store (files beside sled, rows
/// in PostgreSQL): public ones served under `{public_base}/files/`, private
/// ones only through the uploads route.
pub struct LocalObjects {
    repo: Arc<dyn ObjectRepo>,
    public_base: String,
}

impl LocalObjects {
    /// Objects kept in `repo`, public ones reachable at `public_base` +
    /// `/files/<key>`.
    pub fn new(repo: Arc<dyn ObjectRepo>, public_base: String) -> Self {
        Self { repo, public_base }
    }

    /// Stores an object and waits until it is durable: the record naming it
    /// is about to be acknowledged.
    async fn keep(&self, object: StoredObject) -> Result<(), ObjectError> {
        let repo = self.repo.clone();
        tokio::task::spawn_blocking(move || repo.put_object(&object))
            .await
            .map_err(|e| ObjectError::Io(e.to_string()))?
            .map_err(|e| ObjectError::Io(e.to_string()))?;
        self.repo
            .commit()
            .await
            .map_err(|e| ObjectError::Io(e.to_string()))
    }

    /// Reads an object off the async threads (a read may wait on disk or
    /// the database).
    async fn read(
        &self,
        visibility: Visibility,
        key: &str,
    ) -> Result<Option<StoredObject>, ObjectError> {
        let key = parse_key(key)?;
        let repo = self.repo.clone();
        tokio::task::spawn_blocking(move || repo.get_object(visibility, &key))
            .await
            .map_err(|e| ObjectError::Io(e.to_string()))?
            .map_err(|e| ObjectError::Io(e.to_string()))
    }
}

#[async_trait]
impl ObjectStore for LocalObjects {
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<String, ObjectError> {
        self.keep(StoredObject {
            key: parse_key(key)?,
            visibility: Visibility::Public,
            content_type: content_type.to_owned(),
            bytes,
        })
        .await?;
        Ok(format!(
            "{}/files/{}",
            self.public_base.trim_end_matches('/'),
            key
        ))
    }

    async fn put_private(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ObjectError> {
        self.keep(StoredObject {
            key: parse_key(key)?,
            visibility: Visibility::Private,
            content_type: content_type.to_owned(),
            bytes,
        })
        .await
    }

    async fn get_private(&self, key: &str) -> Result<PrivateObject, ObjectError> {
        match self.read(Visibility::Private, key).await? {
            Some(object) => Ok(PrivateObject::Bytes(object.bytes)),
            None => Err(ObjectError::Io(format!("no object {key}"))),
        }
    }

    async fn get_public(&self, key: &str) -> Result<Option<StoredObject>, ObjectError> {
        self.read(Visibility::Public, key).await
    }
}

/// Qiniu credentials and endpoints.
#[derive(Debug, Clone)]
pub struct QiniuConfig {
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: Secret,
    /// Bucket.
    pub bucket: String,
    /// Form-upload URL.
    pub upload_url: String,
    /// The bucket's public HTTPS domain.
    pub public_base: String,
}

/// The upload token for a put policy: `AK:urlsafe_b64(hmac_sha1(SK, encoded_policy)):encoded_policy`.
pub fn qiniu_upload_token(access_key: &str, secret_key: &str, put_policy_json: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE;
    let encoded_policy = b64.encode(put_policy_json.as_bytes());
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret_key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(encoded_policy.as_bytes());
    let sign = b64.encode(mac.finalize().into_bytes());
    format!("{access_key}:{sign}:{encoded_policy}")
}

/// A private-bucket download URL: `url?e=deadline&token=AK:urlsafe_b64(hmac_sha1(SK, url?e=deadline))`.
pub fn qiniu_private_url(access_key: &str, secret_key: &str, url: &str, deadline: i64) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE;
    let with_deadline = format!("{url}?e={deadline}");
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret_key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(with_deadline.as_bytes());
    let sign = b64.encode(mac.finalize().into_bytes());
    format!("{with_deadline}&token={access_key}:{sign}")
}

/// Qiniu form upload.
pub struct QiniuObjects {
    config: QiniuConfig,
    http: reqwest::Client,
}

impl QiniuObjects {
    /// A client for `config`.
    pub fn new(config: QiniuConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self { config, http }
    }

    fn token_for(&self, key: &str) -> String {
        let deadline = time::OffsetDateTime::now_utc().unix_timestamp()
            + UPLOAD_TOKEN_LIFETIME.as_secs() as i64;
        let policy = serde_json::json!({
            "scope": format!("{}:{}", self.config.bucket, key),
            "deadline": deadline,
        });
        qiniu_upload_token(
            &self.config.access_key,
            self.config.secret_key.expose(),
            &policy.to_string(),
        )
    }
}

#[async_trait]
impl ObjectStore for QiniuObjects {
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<String, ObjectError> {
        self.upload(key, bytes, content_type).await?;
        Ok(self.url_of(key))
    }

    async fn put_private(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ObjectError> {
        self.upload(key, bytes, content_type).await
    }

    async fn get_private(&self, key: &str) -> Result<PrivateObject, ObjectError> {
        if !valid_key(key) {
            return Err(ObjectError::BadKey);
        }
        let deadline = time::OffsetDateTime::now_utc().unix_timestamp()
            + PRIVATE_URL_LIFETIME.as_secs() as i64;
        Ok(PrivateObject::Signed(qiniu_private_url(
            &self.config.access_key,
            self.config.secret_key.expose(),
            &self.url_of(key),
            deadline,
        )))
    }
}

impl QiniuObjects {
    fn url_of(&self, key: &str) -> String {
        format!("{}/{}", self.config.public_base.trim_end_matches('/'), key)
    }

    /// One form upload of `bytes` under `key`.
    async fn upload(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ObjectError> {
        if !valid_key(key) {
            return Err(ObjectError::BadKey);
        }
        let file = reqwest::multipart::Part::bytes(bytes)
            .file_name(key.to_owned())
            .mime_str(content_type)
            .map_err(|e| ObjectError::Io(e.to_string()))?;
        let form = reqwest::multipart::Form::new()
            .text("token", self.token_for(key))
            .text("key", key.to_owned())
            .part("file", file);
        let res = self
            .http
            .post(&self.config.upload_url)
            .multipart(form)
            .send()
            .await
            // The upload URL carries no secret, but keep URLs out of logs alike.
            .map_err(|e| ObjectError::Io(e.without_url().to_string()))?;
        if !res.status().is_success() {
            return Err(ObjectError::Io(format!("Qiniu answered {}", res.status())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_token_matches_qinius_documented_vector() {
        let policy = r#"{"scope":"my-bucket:sunflower.jpg","deadline":1451491200,"returnBody":"{\"name\":$(fname),\"size\":$(fsize),\"w\":$(imageInfo.width),\"h\":$(imageInfo.height),\"hash\":$(etag)}"}"#;
        let token = qiniu_upload_token("MY_ACCESS_KEY", "MY_SECRET_KEY", policy);
        let encoded = base64::engine::general_purpose::URL_SAFE.encode(policy);
        assert_eq!(
            token,
            format!("MY_ACCESS_KEY:wQ4ofysef1R7IKnrziqtomqyDvI=:{encoded}")
        );
    }

    #[test]
    fn private_url_matches_qinius_documented_vector() {
        let url = qiniu_private_url(
            "MY_ACCESS_KEY",
            "MY_SECRET_KEY",
            "http://78re52.com1.z0.glb.clouddn.com/resource/flower.jpg",
            1451491200,
        );
        assert_eq!(
            url,
            "http://78re52.com1.z0.glb.clouddn.com/resource/flower.jpg?e=1451491200&token=MY_ACCESS_KEY:438dd8pXocjYuF-6dTcKMtETB2g="
        );
    }
}
