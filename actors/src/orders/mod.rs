//! The orders actors: orders sharded by id over N supervised actors, each the
//! only owner of its orders' state machine and timers.
//!
//! A shard keeps only active (non-terminal) orders in memory; history lives
//! in sled. Every change is written to sled first and applied to memory only
//! when that write succeeded; the router answers the caller only after the
//! group commit that covers the write, so an acknowledged change survives
//! `kill -9`. On (re)start a shard reloads its
//! active orders and rebuilds its payment deadlines from sled.
//!
//! - `protocol`: what callers send a shard, and the [`OrderEvent`]s the
//!   shards publish to the listeners handed over at start
//! - `shard`: one shard, the actor that owns its orders
//! - this module: the settings, the errors, and [`Orders`], the handle that
//!   routes each call to the owning shard

pub mod figures;
mod protocol;
mod shard;

pub use protocol::*;
pub use shard::OrderShard;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::domain::{
    ChangedBy, IdempotencyKey, NewOrder, OpenId, Order, OrderId, Shard, Status, TransitionError,
};
use crate::storage::{OrderRepo, StorageError};

/// An Idempotency-Key protects a retry, not a day-old request: after this
/// the same key makes a new order, and the key is forgotten.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

/// The `[orders]` settings the shards need.
#[derive(Debug, Clone)]
pub struct OrdersConfig {
    /// How many shards (actors, each on its own arbiter thread).
    pub shards: usize,
    /// An unpaid order is cancelled this long after creation.
    pub payment_timeout: Duration,
    /// A delivered order completes itself this long after delivery.
    pub auto_confirm: Duration,
    /// Orders one customer may have awaiting payment at once.
    pub max_unpaid: u32,
    /// Every hand-over needs a photo (`orders.delivery_photo = "required"`).
    pub delivery_photo_required: bool,
    /// A paid order nobody has taken: its customer is told after this.
    pub untaken_notice_after: Duration,
    /// … and it is refunded after this.
    pub untaken_refund_after: Duration,
    /// Delivered orders are reported to WeChat's shipping-info service.
    pub shipping_info: bool,
}

/// Why an order operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// No such order, or not one the caller may see.
    #[error("order not found")]
    NotFound,
    /// The status machine does not allow it.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The caller may see the order but not do this to it.
    #[error("{0}")]
    Forbidden(&'static str),
    /// sled failed; nothing was acknowledged.
    #[error("storage is unavailable")]
    Storage(#[from] StorageError),
    /// The shard is restarting or gone.
    #[error("the orders shard is unavailable")]
    Unavailable,
    /// The customer already has `orders.max_unpaid` orders awaiting payment.
    #[error("a customer may have at most {0} orders awaiting payment; pay or cancel one first")]
    TooManyUnpaid(u32),
    /// The request breaks a rule (the message names the field).
    #[error(transparent)]
    Invalid(crate::domain::ValidationError),
    /// Already done once (a second dispute of one order).
    #[error("{0}")]
    Conflict(&'static str),
}

impl From<MailboxError> for OrderError {
    fn from(_: MailboxError) -> Self {
        OrderError::Unavailable
    }
}

/// Hands the started shards their listeners, once those exist.
#[must_use = "the shards wait for their listeners"]
pub struct OrdersWiring {
    shards: Vec<std::sync::mpsc::Sender<OrderListeners>>,
}

impl OrdersWiring {
    /// Every shard publishes its [`OrderEvent`]s to `listeners` from now on.
    pub fn listen(self, listeners: Vec<Recipient<OrderEvent>>) {
        let listeners: OrderListeners = listeners.into();
        for shard in self.shards {
            // A shard that is gone has nothing to hear.
            let _ = shard.send(listeners.clone());
        }
    }
}

/// Sends `event` to every listener.
fn publish(listeners: &OrderListeners, event: OrderEvent) {
    for listener in listeners.iter() {
        listener.do_send(event.clone());
    }
}

/// The façade's handle on the orders shards: routes each call to its owner.
#[derive(Clone)]
pub struct Orders {
    shards: Arc<[Addr<OrderShard>]>,
    store: Arc<dyn OrderRepo>,
}

impl Orders {
    /// Starts `config.shards` supervised shards, each on its own arbiter
    /// thread. Their addresses exist at once (the dispatcher and payments
    /// need this handle to start); each shard begins when
    /// [`OrdersWiring::listen`] hands it its listeners.
    pub fn start(store: Arc<dyn OrderRepo>, config: OrdersConfig) -> (Self, OrdersWiring) {
        let count = config.shards.max(1);
        let mut wiring = OrdersWiring {
            shards: Vec::with_capacity(count),
        };
        let shards: Vec<Addr<OrderShard>> = (0..count)
            .map(|index| {
                let arbiter = Arbiter::new();
                let (store, config) = (store.clone(), config.clone());
                let (tx, rx) = std::sync::mpsc::channel::<OrderListeners>();
                wiring.shards.push(tx);
                Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
                    // This arbiter runs only this shard: waiting here holds
                    // nothing else up.
                    let listeners = rx.recv().unwrap_or_else(|_| {
                        tracing::error!(
                            shard = index,
                            "startup ended before the shard got its listeners"
                        );
                        Arc::from([])
                    });
                    OrderShard::new(index, count, store, config, listeners)
                })
            })
            .collect();
        let orders = Self {
            shards: shards.into(),
            store,
        };
        (orders, wiring)
    }

    /// Asks every shard to tell its paid and assigned orders again.
    pub fn retell_active(&self) {
        for shard in self.shards.iter() {
            shard.do_send(RetellActive);
        }
    }

    fn shard(&self, id: &OrderId) -> &Addr<OrderShard> {
        &self.shards[Shard::of_order(id, self.shards.len()).index]
    }

    /// Creates an order; with an idempotency key a replay returns the first one.
    pub async fn create(
        &self,
        customer: OpenId,
        order: NewOrder,
        key: Option<IdempotencyKey>,
    ) -> Result<Order, OrderError> {
        let shard = &self.shards[Shard::of_customer(&customer, self.shards.len()).index];
        let created = shard
            .send(CreateOrder {
                customer,
                order,
                key,
            })
            .await??;
        let id = created.id.clone();
        self.durable(&id, created).await
    }

    /// An order the viewer may see (customer or assigned courier).
    pub async fn get(&self, id: &OrderId, viewer: &OpenId) -> Result<Order, OrderError> {
        match self.peek(id).await? {
            Some(order) if order.visible_to(viewer) => Ok(order),
            _ => Err(OrderError::NotFound),
        }
    }

    /// An order by id, whoever asks (for other actors and trusted callers),
    /// answered by its shard.
    pub async fn peek(&self, id: &OrderId) -> Result<Option<Order>, OrderError> {
        self.shard(id).send(Peek { id: id.clone() }).await?
    }

    /// Several orders at once (each from its shard, concurrently), in the
    /// order of `ids`.
    pub async fn peek_all(&self, ids: &[OrderId]) -> Result<Vec<Option<Order>>, OrderError> {
        futures::future::join_all(ids.iter().map(|id| self.peek(id)))
            .await
            .into_iter()
            .collect()
    }

    /// A page of the customer's orders, newest first, and the id to pass
    /// as `before` for the next page (None when there is nothing more).
    pub async fn list(
        &self,
        customer: OpenId,
        status: Option<Status>,
        limit: usize,
        before: Option<OrderId>,
    ) -> Result<(Vec<Order>, Option<OrderId>), OrderError> {
        let store = self.store.clone();
        let scan = move || store.list_customer_orders(&customer, status, limit, before.as_ref());
        let page = tokio::task::spawn_blocking(scan)
            .await
            .map_err(|_| OrderError::Unavailable)??;
        Ok(page)
    }

    /// Cancels an order for its customer.
    pub async fn cancel(&self, id: OrderId, by: OpenId) -> Result<Order, OrderError> {
        let order = self
            .shard(&id)
            .send(CancelOrder { id: id.clone(), by })
            .await??;
        self.durable(&id, order).await
    }

    /// Answers `value` once the shard's write behind order `id` is on
    /// disk. The shard replies as soon as sled has the write; waiting here,
    /// on the caller's thread, keeps the shard's mailbox moving and saves a
    /// hop. When the flush fails, the shard re-reads the order, so its
    /// memory holds no change the caller was not told of as durable.
    async fn durable<T>(&self, id: &OrderId, value: T) -> Result<T, OrderError> {
        if let Err(e) = self.store.commit().await {
            self.shard(id).do_send(Reload { id: id.clone() });
            return Err(e.into());
        }
        Ok(value)
    }

    /// True while every shard's mailbox is open.
    pub fn is_alive(&self) -> bool {
        self.shards.iter().all(|a| a.connected())
    }

    /// Applies a confirmed payment (durable before it returns).
    pub async fn confirm_payment(&self, id: OrderId) -> Result<PaymentOutcome, OrderError> {
        let outcome = self
            .shard(&id)
            .send(ConfirmPayment { id: id.clone() })
            .await??;
        self.durable(&id, outcome).await
    }

    /// Cancels an order WeChat Pay closed unpaid (no-op if it is not unpaid).
    pub async fn cancel_unpaid(&self, id: OrderId) -> Result<Order, OrderError> {
        let order = self
            .shard(&id)
            .send(CancelUnpaid { id: id.clone() })
            .await??;
        self.durable(&id, order).await
    }

    /// Applies a confirmed refund (no-op if not refunding).
    pub async fn confirm_refund(&self, id: OrderId) -> Result<Order, OrderError> {
        let order = self
            .shard(&id)
            .send(ConfirmRefund { id: id.clone() })
            .await??;
        self.durable(&id, order).await
    }

    /// Gives a paid order to a courier (durable before it returns);
    /// `take_over` also takes it from a courier who has not picked it up.
    pub async fn assign(
        &self,
        id: OrderId,
        courier: OpenId,
        by: ChangedBy,
        take_over: bool,
        campus: CampusOf,
    ) -> Result<Order, OrderError> {
        let order = self
            .shard(&id)
            .send(AssignCourier {
                id: id.clone(),
                courier,
                by,
                take_over,
                campus,
            })
            .await??;
        self.durable(&id, order).await
    }

    /// Takes an assigned order back from an offline courier.
    pub async fn unassign(
        &self,
        id: OrderId,
        courier: OpenId,
        by: ChangedBy,
    ) -> Result<Order, OrderError> {
        self.unassign_noted(id, courier, by, String::new()).await
    }

    /// [`Orders::unassign`] with a reason kept in the history (a courier's
    /// give-back).
    pub async fn unassign_noted(
        &self,
        id: OrderId,
        courier: OpenId,
        by: ChangedBy,
        note: String,
    ) -> Result<Order, OrderError> {
        let order = self
            .shard(&id)
            .send(UnassignOrder {
                id: id.clone(),
                courier,
                by,
                note,
            })
            .await??;
        self.durable(&id, order).await
    }

    /// An operator's refund (durable before it returns; the money goes
    /// back through WeChat Pay after).
    pub async fn operator_refund(
        &self,
        id: OrderId,
        by: ChangedBy,
        note: String,
    ) -> Result<Order, OrderError> {
        let order = self
            .shard(&id)
            .send(OperatorRefund {
                id: id.clone(),
                by,
                note,
            })
            .await??;
        self.durable(&id, order).await
    }

    /// WeChat Pay gave up on an order's refund (`refund_status` as `note`).
    /// Records when WeChat's shipping-info service took a delivery
    /// (durable before it returns).
    pub async fn shipping_reported(
        &self,
        id: OrderId,
        at: time::OffsetDateTime,
    ) -> Result<(), OrderError> {
        self.shard(&id)
            .send(ShippingReported { id: id.clone(), at })
            .await??;
        self.durable(&id, ()).await
    }

    /// WeChat Pay answered a refund as closed or abnormal.
    pub async fn fail_refund(&self, id: OrderId, note: String) -> Result<Order, OrderError> {
        let order = self
            .shard(&id)
            .send(FailRefund {
                id: id.clone(),
                note,
            })
            .await??;
        self.durable(&id, order).await
    }

    /// An operator records that a failed refund was settled by hand.
    pub async fn settle_refund(
        &self,
        id: OrderId,
        by: ChangedBy,
        note: String,
    ) -> Result<Order, OrderError> {
        let order = self
            .shard(&id)
            .send(SettleRefund {
                id: id.clone(),
                by,
                note,
            })
            .await??;
        self.durable(&id, order).await
    }

    /// Records a note in an order's history.
    pub async fn add_note(
        &self,
        id: OrderId,
        by: ChangedBy,
        note: String,
    ) -> Result<Order, OrderError> {
        let order = self
            .shard(&id)
            .send(AddNote {
                id: id.clone(),
                by,
                note,
            })
            .await??;
        self.durable(&id, order).await
    }

    /// The figures of the orders created since `since` (at most a day
    /// ago): each shard keeps snapshots of its recent orders as they
    /// change, so this reads no storage.
    pub async fn figures_since(
        &self,
        since: time::OffsetDateTime,
        campus: Option<CampusOf>,
    ) -> Result<figures::DayFigures, OrderError> {
        let answers = futures::future::join_all(self.shards.iter().map(|shard| {
            shard.send(SnapshotsSince {
                since,
                campus: campus.clone(),
            })
        }))
        .await;
        let mut snapshots = Vec::new();
        for answer in answers {
            snapshots.extend(answer.map_err(|_| OrderError::Unavailable)?);
        }
        Ok(figures::day_figures(&snapshots))
    }

    /// A courier's orders whose money is not settled yet (their pending
    /// earnings), from every shard's memory.
    pub async fn unsettled_of(&self, courier: OpenId) -> Result<Vec<Order>, OrderError> {
        let answers = futures::future::join_all(self.shards.iter().map(|shard| {
            shard.send(CourierUnsettled {
                courier: courier.clone(),
            })
        }))
        .await;
        let mut orders = Vec::new();
        for answer in answers {
            orders.extend(answer.map_err(|_| OrderError::Unavailable)?);
        }
        Ok(orders)
    }

    /// The customer disputes a delivered order (durable before it returns).
    pub async fn open_dispute(
        &self,
        id: OrderId,
        by: OpenId,
        dispute: crate::domain::NewDispute,
    ) -> Result<Order, OrderError> {
        let order = self
            .shard(&id)
            .send(OpenDispute {
                id: id.clone(),
                by,
                dispute,
            })
            .await??;
        self.durable(&id, order).await
    }

    /// An operator settles a dispute (durable before it returns; a refund
    /// goes out through WeChat Pay after).
    pub async fn resolve_dispute(
        &self,
        id: OrderId,
        refund_fen: u32,
        note: String,
        by: Option<crate::domain::OperatorName>,
    ) -> Result<Order, OrderError> {
        let order = self
            .shard(&id)
            .send(ResolveDispute {
                id: id.clone(),
                refund_fen,
                note,
                by,
            })
            .await??;
        self.durable(&id, order).await
    }

    /// Every open dispute, oldest first.
    pub async fn open_disputes(&self) -> Result<Vec<Order>, OrderError> {
        let answers =
            futures::future::join_all(self.shards.iter().map(|shard| shard.send(OpenDisputes)))
                .await;
        let mut orders = Vec::new();
        for answer in answers {
            orders.extend(answer.map_err(|_| OrderError::Unavailable)?);
        }
        orders.sort_by_key(|o| {
            o.extras
                .dispute
                .as_ref()
                .map_or(o.updated_at, |d| d.opened_at)
        });
        Ok(orders)
    }

    /// Pickup, deliver or confirm on behalf of `by`.
    pub async fn step(&self, id: OrderId, by: OpenId, step: Step) -> Result<Order, OrderError> {
        let order = self
            .shard(&id)
            .send(TakeStep {
                id: id.clone(),
                by,
                step,
            })
            .await??;
        self.durable(&id, order).await
    }

    /// True when every shard is alive and storage takes durable writes.
    pub fn is_ready(&self) -> bool {
        self.is_alive() && self.store.is_healthy() && self.store.is_writable()
    }

    /// How many shards there are.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Makes shard `index` panic (fault injection for tests).
    #[doc(hidden)]
    pub async fn inject_panic(&self, index: usize) -> Result<(), OrderError> {
        let addr = self.shards.get(index).ok_or(OrderError::NotFound)?;
        addr.send(InjectPanic).await?
    }
}
