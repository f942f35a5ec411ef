//! The dispatcher's repository: the `couriers` tree (profiles).

use super::*;
use crate::domain::ChinaDay;
use crate::storage::{Committing, CourierRepo};

/// The dispatcher's tree.
#[derive(Clone)]
pub struct SledCouriers(pub(super) SledStore);

impl CourierRepo for SledCouriers {
    fn put_courier(&self, profile: &CourierProfile) -> Result<(), StorageError> {
        let bytes = encode_courier(profile)?;
        self.0
            .inner
            .couriers
            .insert(profile.openid.as_str().as_bytes(), bytes)?;
        Ok(())
    }

    fn get_courier(&self, openid: &OpenId) -> Result<Option<CourierProfile>, StorageError> {
        match self.0.inner.couriers.get(openid.as_str().as_bytes())? {
            Some(bytes) => courier_of(&bytes, openid.as_str()).map(Some),
            None => Ok(None),
        }
    }

    fn all_couriers(&self) -> Result<Vec<CourierProfile>, StorageError> {
        let mut all = Vec::new();
        for entry in self.0.inner.couriers.iter() {
            let (key, bytes) = entry?;
            all.push(courier_of(&bytes, &String::from_utf8_lossy(&key))?);
        }
        Ok(all)
    }

    fn releases_on(&self, openid: &OpenId, day: ChinaDay) -> Result<u32, StorageError> {
        let key = format!("{}\0{day}", openid.as_str()).into_bytes();
        Ok(self
            .0
            .inner
            .courier_releases
            .get(key)?
            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map_or(0, u32::from_be_bytes))
    }

    fn count_release(&self, openid: &OpenId, day: ChinaDay) -> Result<u32, StorageError> {
        let n = self.releases_on(openid, day)? + 1;
        let key = format!("{}\0{day}", openid.as_str()).into_bytes();
        self.0
            .inner
            .courier_releases
            .insert(key, &n.to_be_bytes())?;
        Ok(n)
    }

    fn commit(&self) -> Committing {
        self.0.committing()
    }
}
