//! The share-code actor's repository: the `share_codes` tree.

use super::*;
use crate::storage::{Committing, ShareCodeRepo};

/// The share-code actor's tree.
#[derive(Clone)]
pub struct SledShareCodes(pub(super) SledStore);

impl ShareCodeRepo for SledShareCodes {
    fn get_share_code(&self, scene: &str, page: &str) -> Result<Option<String>, StorageError> {
        let key = [scene.as_bytes(), b"\0", page.as_bytes()].concat();
        Ok(self
            .0
            .inner
            .share_codes
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn put_share_code(&self, scene: &str, page: &str, url: &str) -> Result<(), StorageError> {
        let key = [scene.as_bytes(), b"\0", page.as_bytes()].concat();
        self.0.inner.share_codes.insert(key, url.as_bytes())?;
        Ok(())
    }

    fn commit(&self) -> Committing {
        self.0.committing()
    }
}
