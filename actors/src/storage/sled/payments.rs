//! The payments actor's repository: the `payments` tree.

use super::*;
use crate::domain::PaymentRecord;
use crate::storage::{Committing, PaymentRepo};

/// The payments actor's tree.
#[derive(Clone)]
pub struct SledPayments(pub(super) SledStore);

impl PaymentRepo for SledPayments {
    /// Writes an order's payment session. Not durable until [`Self::commit`].
    fn put_payment(&self, record: &PaymentRecord) -> Result<(), StorageError> {
        self.0
            .inner
            .payments
            .insert(record.order_id.as_str().as_bytes(), store(record)?)?;
        Ok(())
    }

    /// An order's payment session.
    fn get_payment(&self, id: &OrderId) -> Result<Option<PaymentRecord>, StorageError> {
        match self.0.inner.payments.get(id.as_str().as_bytes())? {
            Some(bytes) => load(&bytes, id.as_str()).map(Some),
            None => Ok(None),
        }
    }

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing {
        let store = self.0.clone();
        Box::pin(async move { store.commit().await })
    }
}
