//! Object storage for generated images: a local directory (default, served
//! by the service under `/files/`) or Qiniu (form upload with an upload
//! token: put policy JSON, URL-safe base64, HMAC-SHA1 with the secret key).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::wechat::Secret;

/// How long an upload token stays valid.
const UPLOAD_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

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

/// Where generated images go.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Stores `bytes` under `key`; answers the public URL.
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<String, ObjectError>;
}

/// Keys are flat file names: `[A-Za-z0-9._-]`, no leading dot.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A directory on local disk, served under `{public_base}/files/`.
pub struct LocalObjects {
    dir: PathBuf,
    public_base: String,
}

impl LocalObjects {
    /// Objects in `dir`, reachable at `public_base` + `/files/<key>`.
    pub fn new(dir: PathBuf, public_base: String) -> Self {
        Self { dir, public_base }
    }

    /// The file behind a key (for the `/files/` route).
    pub fn path_of(&self, key: &str) -> Option<PathBuf> {
        valid_key(key).then(|| self.dir.join(key))
    }
}

#[async_trait]
impl ObjectStore for LocalObjects {
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        _content_type: &str,
    ) -> Result<String, ObjectError> {
        let path = self.path_of(key).ok_or(ObjectError::BadKey)?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            // Write then rename, so a reader never sees half a PNG.
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(&tmp, &path)
        })
        .await
        .map_err(|e| ObjectError::Io(e.to_string()))?
        .map_err(|e| ObjectError::Io(e.to_string()))?;
        Ok(format!(
            "{}/files/{}",
            self.public_base.trim_end_matches('/'),
            key
        ))
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
        Ok(format!(
            "{}/{}",
            self.config.public_base.trim_end_matches('/'),
            key
        ))
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
    fn keys_are_flat_safe_names() {
        assert!(valid_key("wxacode-0123abcd.png"));
        for bad in ["", "../etc/passwd", ".hidden", "a/b.png", "a b.png"] {
            assert!(!valid_key(bad), "{bad}");
        }
    }
}
