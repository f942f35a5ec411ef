//! The share-code actor's repository: the `share_codes` tree.

use super::*;
use crate::storage::{Committing, ShareCodeRepo};

/// The share-code actor's tree.
#[derive(Clone)]
pub struct SledShareCodes(pub(super) SledStore);

impl ShareCodeRepo for SledShareCodes {
    /// The URL of an uploaded share code, if made before.
    fn get_share_code(&self, scene: &str, page: &str) -> Result<Option<String>, StorageError> {
        let key = [scene.as_bytes(), b"\0", page.as_bytes()].concat();
        Ok(self
            .0
            .inner
            .share_codes
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Remembers an uploaded share code's URL.
    fn put_share_code(&self, scene: &str, page: &str, url: &str) -> Result<(), StorageError> {
        let key = [scene.as_bytes(), b"\0", page.as_bytes()].concat();
        self.0.inner.share_codes.insert(key, url.as_bytes())?;
        Ok(())
    }

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing {
        let store = self.0.clone();
        Box::pin(async move { store.commit().await })
    }
}
