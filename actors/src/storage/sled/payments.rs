//! The payments actor's repository: the `payments` tree.

use super::*;
use crate::domain::PaymentRecord;
use crate::storage::{Committing, PaymentRepo};

/// The payments actor's tree.
#[derive(Clone)]
pub struct SledPayments(pub(super) SledStore);

impl PaymentRepo for SledPayments {
    fn put_payment(&self, record: &PaymentRecord) -> Result<(), StorageError> {
        self.0
            .inner
            .payments
            .insert(record.order_id.as_str().as_bytes(), store(record)?)?;
        Ok(())
    }

    fn get_payment(&self, id: &OrderId) -> Result<Option<PaymentRecord>, StorageError> {
        match self.0.inner.payments.get(id.as_str().as_bytes())? {
            Some(bytes) => load(&bytes, id.as_str()).map(Some),
            None => Ok(None),
        }
    }

    fn commit(&self) -> Committing {
        self.0.committing()
    }
}
