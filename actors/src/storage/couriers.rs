//! The dispatcher's storage: courier profiles and the orders each gave back per day.

use crate::domain::{ChinaDay, CourierProfile, OpenId};

use super::{Committing, StorageError};

/// The dispatcher's storage.
pub trait CourierRepo: Send + Sync {
    /// Saves a courier profile.
    fn put_courier(&self, profile: &CourierProfile) -> Result<(), StorageError>;

    /// A courier profile.
    fn get_courier(&self, openid: &OpenId) -> Result<Option<CourierProfile>, StorageError>;

    /// Every courier profile (a campus has hundreds, not millions).
    fn all_couriers(&self) -> Result<Vec<CourierProfile>, StorageError>;

    /// How many orders a courier gave back on a (China) day.
    fn releases_on(&self, openid: &OpenId, day: ChinaDay) -> Result<u32, StorageError>;

    /// Counts one more give-back on a day (the dispatcher is the one writer).
    fn count_release(&self, openid: &OpenId, day: ChinaDay) -> Result<u32, StorageError>;

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing;
}
