//! The orders shards' storage: active and archived orders, idempotency keys, and the outbox and inbox entries written with an order change.

use crate::domain::{
    IdempotencyKey, MoneyEvent, OpenId, Order, OrderId, OutboxEntry, Sequence, Shard, Status,
};

use super::{Committing, StorageError};

/// The orders shards' storage.
pub trait OrderRepo: Send + Sync {
    /// Reads one order from the active orders only (a shard re-reading what
    /// it owns after a failed commit).
    fn get_active_order(&self, id: &OrderId) -> Result<Option<Order>, StorageError>;

    /// Writes a new order (and its idempotency key, atomically, if any).
    /// Not durable until [`Self::commit`].
    fn insert_new_order(
        &self,
        order: &Order,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), StorageError>;

    /// Writes a changed order; a terminal one moves to the archive, and one
    /// that leaves a terminal status (a late payment) moves back.
    fn update_order(&self, order: &Order, was_terminal: bool) -> Result<(), StorageError>;

    /// [`Self::update_order`] plus, in the same transaction, a message for
    /// the notifier's outbox and the money the change moves for the
    /// ledger's inbox: the state change, its message and its money are
    /// durable together or not at all.
    ///
    /// An engine may write a payment's one event just before its order
    /// instead (see the sled engine), never the order without the event:
    /// posting is idempotent, and the ledger re-derives the events of
    /// active orders at every start ([`super::LedgerRepo::tell_active`]).
    fn update_order_with(
        &self,
        order: &Order,
        was_terminal: bool,
        messages: &[OutboxEntry],
        money: &[(u64, MoneyEvent)],
    ) -> Result<(), StorageError>;

    /// The store's increasing ids (outbox entries, the ledger's inbox).
    fn ids(&self) -> Sequence;

    /// The order a customer created with this idempotency key, if any and
    /// if it was made after `since_ms` (unix ms; older keys are forgotten).
    fn idempotent_order(
        &self,
        customer: &OpenId,
        key: &IdempotencyKey,
        since_ms: u64,
    ) -> Result<Option<OrderId>, StorageError>;

    /// Forgets idempotency keys of orders made before `since_ms` whose
    /// customer `shard` owns (each shard sweeps its own); returns how many.
    fn prune_idempotency(&self, since_ms: u64, shard: Shard) -> Result<usize, StorageError>;

    /// One order by id, active or archived.
    fn get_order(&self, id: &OrderId) -> Result<Option<Order>, StorageError>;

    /// Every order, active or archived, created at or after `since_ms`
    /// that `shard` owns (both read from the id, so
    /// other records are not decoded).
    fn orders_created_since(&self, since_ms: u64, shard: Shard)
        -> Result<Vec<Order>, StorageError>;

    /// Every active order `shard` owns.
    fn active_orders(&self, shard: Shard) -> Result<Vec<Order>, StorageError>;

    /// A page of a customer's orders, newest first, optionally one status
    /// only; `before` is the cursor of the previous page. Returns the page
    /// and the cursor of the next one: None only when nothing older is left.
    fn list_customer_orders(
        &self,
        customer: &OpenId,
        status: Option<Status>,
        limit: usize,
        before: Option<&OrderId>,
    ) -> Result<(Vec<Order>, Option<OrderId>), StorageError>;

    /// True when the database answers a read.
    fn is_healthy(&self) -> bool;

    /// True when storage takes durable writes (see [`super::Engine::is_writable`]).
    fn is_writable(&self) -> bool;

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing;
}
