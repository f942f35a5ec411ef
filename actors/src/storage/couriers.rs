//! The dispatcher's repository: the `couriers` tree (profiles).

use super::*;

/// The dispatcher's tree.
#[derive(Clone)]
pub struct CourierRepo(pub(super) Store);

impl CourierRepo {
    /// Saves a courier profile.
    pub fn put_courier(&self, profile: &CourierProfile) -> Result<(), StorageError> {
        self.0
            .inner
            .couriers
            .insert(profile.openid.as_str().as_bytes(), store(profile)?)?;
        Ok(())
    }

    /// A courier profile.
    pub fn get_courier(&self, openid: &OpenId) -> Result<Option<CourierProfile>, StorageError> {
        match self.0.inner.couriers.get(openid.as_str().as_bytes())? {
            Some(bytes) => load(&bytes, openid.as_str()).map(Some),
            None => Ok(None),
        }
    }

    /// Waits until every write made before this call is on disk.
    pub async fn commit(&self) -> Result<(), StorageError> {
        self.0.commit().await
    }
}
