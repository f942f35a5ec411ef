//! The uploads actor's repository: the `uploads` tree (photo records) and
//! `upload_days` (photos stored per user and China day).

use super::*;
use crate::domain::ChinaDay;
use crate::storage::{Committing, UploadRepo};

/// The uploads actor's tree.
#[derive(Clone)]
pub struct SledUploads(pub(super) SledStore);

impl UploadRepo for SledUploads {
    /// Saves an upload's record.
    fn put_upload(&self, upload: &Upload) -> Result<(), StorageError> {
        self.0
            .inner
            .uploads
            .insert(upload.id.as_str().as_bytes(), store(upload)?)?;
        Ok(())
    }

    /// An upload's record.
    fn get_upload(&self, id: &UploadId) -> Result<Option<Upload>, StorageError> {
        match self.0.inner.uploads.get(id.as_str().as_bytes())? {
            Some(bytes) => load(&bytes, id.as_str()).map(Some),
            None => Ok(None),
        }
    }

    /// How many photos `owner` stored on a (China) day.
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

    /// Counts one more stored photo on a day (the uploads actor is the one
    /// writer).
    fn count_upload(&self, owner: &OpenId, day: ChinaDay) -> Result<u32, StorageError> {
        let n = self.uploads_on(owner, day)? + 1;
        let key = format!("{}\0{day}", owner.as_str()).into_bytes();
        self.0.inner.upload_days.insert(key, &n.to_be_bytes())?;
        Ok(n)
    }

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing {
        let store = self.0.clone();
        Box::pin(async move { store.commit().await })
    }
}
