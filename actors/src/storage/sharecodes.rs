//! The share-code actor's repository: the `share_codes` tree.

use super::*;

/// The share-code actor's tree.
#[derive(Clone)]
pub struct ShareCodeRepo(pub(super) Store);

impl ShareCodeRepo {
    /// The URL of an uploaded share code, if made before.
    pub fn get_share_code(&self, scene: &str, page: &str) -> Result<Option<String>, StorageError> {
        let key = [scene.as_bytes(), b"\0", page.as_bytes()].concat();
        Ok(self
            .0
            .inner
            .share_codes
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Remembers an uploaded share code's URL.
    pub fn put_share_code(&self, scene: &str, page: &str, url: &str) -> Result<(), StorageError> {
        let key = [scene.as_bytes(), b"\0", page.as_bytes()].concat();
        self.0.inner.share_codes.insert(key, url.as_bytes())?;
        Ok(())
    }

    /// Waits until every write made before this call is on disk.
    pub async fn commit(&self) -> Result<(), StorageError> {
        self.0.commit().await
    }
}
