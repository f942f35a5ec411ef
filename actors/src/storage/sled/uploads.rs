//! The uploads actor's repository: the `uploads` tree (photo records) and
//! `upload_days` (photos stored per user and China day).

use super::*;
use crate::domain::ChinaDay;
use crate::storage::{Committing, UploadRepo};

/// The uploads actor's tree.
#[derive(Clone)]
pub struct SledUploads(pub(super) SledStore);

impl UploadRepo for SledUploads {
    fn put_upload(&self, upload: &Upload) -> Result<(), StorageError> {
        self.0
            .inner
            .uploads
            .insert(upload.id.as_str().as_bytes(), store(upload)?)?;
        Ok(())
    }

    fn get_upload(&self, id: &UploadId) -> Result<Option<Upload>, StorageError> {
        match self.0.inner.uploads.get(id.as_str().as_bytes())? {
            Some(bytes) => load(&bytes, id.as_str()).map(Some),
            None => Ok(None),
        }
    }

    fn uploads_on(&self, owner: &OpenId, day: ChinaDay) -> Result<u32, StorageError> {
        let key = format!("{}\0{day}", owner.as_str()).into_bytes();
        Ok(self
            .0
            .inner
            .upload_days
            .get(key)?
            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map_or(0, u32::from_be_bytes))
    }

    fn count_upload(&self, owner: &OpenId, day: ChinaDay) -> Result<u32, StorageError> {
        let n = self.uploads_on(owner, day)? + 1;
        let key = format!("{}\0{day}", owner.as_str()).into_bytes();
        self.0.inner.upload_days.insert(key, &n.to_be_bytes())?;
        Ok(n)
    }

    fn commit(&self) -> Committing {
        self.0.committing()
    }
}
