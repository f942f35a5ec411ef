//! The uploads actor's storage: photo records and uploads per owner per day.

use crate::domain::{ChinaDay, OpenId, Upload, UploadId};

use super::{Committing, StorageError};

/// The uploads actor's storage.
pub trait UploadRepo: Send + Sync {
    /// Saves an upload's record.
    fn put_upload(&self, upload: &Upload) -> Result<(), StorageError>;

    /// An upload's record.
    fn get_upload(&self, id: &UploadId) -> Result<Option<Upload>, StorageError>;

    /// How many photos `owner` stored on a (China) day.
    fn uploads_on(&self, owner: &OpenId, day: ChinaDay) -> Result<u32, StorageError>;

    /// Counts one more stored photo on a day (the uploads actor is the one
    /// writer).
    fn count_upload(&self, owner: &OpenId, day: ChinaDay) -> Result<u32, StorageError>;

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing;
}
