//! The payments actor's storage: one payment session per order.

use crate::domain::{OrderId, PaymentRecord};

use super::{Committing, StorageError};

/// The payments actor's storage.
pub trait PaymentRepo: Send + Sync {
    /// Writes an order's payment session. Not durable until [`Self::commit`].
    fn put_payment(&self, record: &PaymentRecord) -> Result<(), StorageError>;

    /// An order's payment session.
    fn get_payment(&self, id: &OrderId) -> Result<Option<PaymentRecord>, StorageError>;

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing;
}
