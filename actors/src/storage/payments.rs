//! The payments actor's repository: the `payments` tree.

use super::*;
use crate::payments::PaymentRecord;

/// The payments actor's tree.
#[derive(Clone)]
pub struct PaymentRepo(pub(super) Store);

impl PaymentRepo {
    /// Writes an order's payment session. Not durable until [`Self::commit`].
    pub fn put_payment(&self, record: &PaymentRecord) -> Result<(), StorageError> {
        self.0.inner.payments.insert(
            record.order_id.as_str().as_bytes(),
            encode(&records::PaymentV1::from(record))?,
        )?;
        Ok(())
    }

    /// An order's payment session.
    pub fn get_payment(&self, id: &OrderId) -> Result<Option<PaymentRecord>, StorageError> {
        match self.0.inner.payments.get(id.as_str().as_bytes())? {
            Some(bytes) => {
                let record: records::PaymentV1 = decode(&bytes, id.as_str())?;
                let corrupt = || StorageError::Corrupt {
                    key: id.as_str().to_owned(),
                };
                record.domain().map(Some).map_err(|_| corrupt())
            }
            None => Ok(None),
        }
    }

    /// Waits until every write made before this call is on disk.
    pub async fn commit(&self) -> Result<(), StorageError> {
        self.0.commit().await
    }
}
