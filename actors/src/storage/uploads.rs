//! The uploads actor's repository: the `uploads` tree (photo records).

use super::*;

/// The uploads actor's tree.
#[derive(Clone)]
pub struct UploadRepo(pub(super) Store);

impl UploadRepo {
    /// Saves an upload's record.
    pub fn put_upload(&self, upload: &Upload) -> Result<(), StorageError> {
        self.0
            .inner
            .uploads
            .insert(upload.id.as_str().as_bytes(), store(upload)?)?;
        Ok(())
    }

    /// An upload's record.
    pub fn get_upload(&self, id: &UploadId) -> Result<Option<Upload>, StorageError> {
        match self.0.inner.uploads.get(id.as_str().as_bytes())? {
            Some(bytes) => load(&bytes, id.as_str()).map(Some),
            None => Ok(None),
        }
    }

    /// Waits until every write made before this call is on disk.
    pub async fn commit(&self) -> Result<(), StorageError> {
        self.0.commit().await
    }
}
