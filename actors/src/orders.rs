//! The orders actors: orders sharded by id over N supervised actors, each the
//! only owner of its orders' state machine and timers.
//!
//! A shard keeps only active (non-terminal) orders in memory; history lives
//! in sled. Every change is written to sled first and applied to memory only
//! when that write succeeded; the router answers the caller only after the
//! group commit that covers the write, so an acknowledged change survives
//! `kill -9`. On (re)start a shard reloads its
//! active orders and rebuilds its payment deadlines from sled.

use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use time::OffsetDateTime;

use crate::domain::{
    now_utc, stable_hash, Event, IdempotencyKey, MessageKind, NewOrder, OpenId, Order, OrderId,
    OutboxEntry, Status, TransitionError, ALL_STATUSES,
};
use crate::storage::{OrderRepo, StorageError};

/// Longest pause between two checks of the payment deadlines.
const MAX_TIMER_TICK: Duration = Duration::from_secs(1);
/// How long a shard waits for the payments actor to settle a due unpaid
/// order before asking again (the first request may have been lost).
const PAYMENT_DUE_RETRY: Duration = Duration::from_secs(10);
/// Shortest pause, so that a tiny configured timeout cannot spin the shard.
const MIN_TIMER_TICK: Duration = Duration::from_millis(20);
/// An Idempotency-Key protects a retry, not a day-old request: after this
/// the same key makes a new order, and the key is forgotten.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
/// How often a shard asks again for the refunds of its `refunding` orders
/// (a refund whose first request was lost, or whose notify never came).
const REFUND_RESEND_EVERY: Duration = Duration::from_secs(60);
/// How often a shard forgets its customers' expired idempotency keys.
const IDEMPOTENCY_SWEEP_EVERY: Duration = Duration::from_secs(3600);

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
}

impl From<MailboxError> for OrderError {
    fn from(_: MailboxError) -> Self {
        OrderError::Unavailable
    }
}

/// Create an order for `customer` (sent to the customer's shard).
#[derive(Message)]
#[rtype(result = "Result<Order, OrderError>")]
pub struct CreateOrder {
    /// Who orders.
    pub customer: OpenId,
    /// What they order.
    pub order: NewOrder,
    /// The client's Idempotency-Key, if it sent one.
    pub key: Option<IdempotencyKey>,
}

/// Cancel an order on the customer's request.
#[derive(Message)]
#[rtype(result = "Result<Order, OrderError>")]
pub struct CancelOrder {
    /// Which order.
    pub id: OrderId,
    /// Who asks.
    pub by: OpenId,
}

/// A payment was confirmed by WeChat Pay (notify or query).
#[derive(Message)]
#[rtype(result = "Result<PaymentOutcome, OrderError>")]
pub struct ConfirmPayment {
    /// The paid order.
    pub id: OrderId,
}

/// What a confirmed payment did to the order.
#[derive(Debug, Clone)]
pub enum PaymentOutcome {
    /// `awaiting_payment → paid`.
    Paid(Order),
    /// Already paid before (a repeat notify): nothing changed.
    AlreadyPaid(Order),
    /// The order had been cancelled: it is now `refunding`, never revived.
    RefundNeeded(Order),
}

/// WeChat Pay says the trade is closed unpaid: cancel if still unpaid.
#[derive(Message)]
#[rtype(result = "Result<Order, OrderError>")]
pub struct CancelUnpaid {
    /// The order.
    pub id: OrderId,
}

/// WeChat Pay confirmed the refund.
#[derive(Message)]
#[rtype(result = "Result<Order, OrderError>")]
pub struct ConfirmRefund {
    /// The order.
    pub id: OrderId,
}

/// For the payments actor: an unpaid order's deadline passed; ask WeChat
/// Pay (a notify may have been lost) before cancelling.
#[derive(Debug, Clone)]
pub struct PaymentDue {
    /// The order.
    pub id: OrderId,
    /// What it costs (an orderquery "paid" must match it).
    pub fee_fen: u32,
}

/// For the payments actor: an order is `refunding` (on disk); send the
/// money back.
#[derive(Debug, Clone)]
pub struct RefundDue {
    /// The order.
    pub id: OrderId,
    /// What was paid, all of which goes back.
    pub fee_fen: u32,
}

/// Give a paid order to a courier (from the dispatcher: matching or grab).
#[derive(Message)]
#[rtype(result = "Result<Order, OrderError>")]
pub struct AssignCourier {
    /// The order.
    pub id: OrderId,
    /// The courier.
    pub courier: OpenId,
}

/// Take an assigned (not picked up) order back from `courier`.
#[derive(Message)]
#[rtype(result = "Result<Order, OrderError>")]
pub struct UnassignOrder {
    /// The order.
    pub id: OrderId,
    /// The courier it must still belong to.
    pub courier: OpenId,
}

/// A courier-or-customer step on an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The assigned courier picked the goods up.
    PickUp,
    /// The assigned courier handed them over.
    Deliver,
    /// The customer confirms receipt.
    Confirm,
}

/// Apply a [`Step`] on behalf of `by`.
#[derive(Message)]
#[rtype(result = "Result<Order, OrderError>")]
pub struct TakeStep {
    /// The order.
    pub id: OrderId,
    /// Who acts.
    pub by: OpenId,
    /// What they do.
    pub step: Step,
}

/// For the dispatcher: an order waits for a courier.
#[derive(Debug, Clone)]
pub struct OrderWaiting {
    /// The order.
    pub id: OrderId,
    /// Where it is picked up.
    pub pickup: crate::domain::PlaceId,
    /// Where it goes.
    pub dropoff: crate::domain::PlaceId,
    /// Its customer (never their own courier).
    pub customer: OpenId,
    /// Since when it waits.
    pub since: OffsetDateTime,
    /// When it can be picked up.
    pub ready_at: OffsetDateTime,
}

impl TaskChanged {
    /// The event for `order` as `courier`'s task.
    pub fn of(order: &Order, courier: OpenId) -> Self {
        Self {
            id: order.id.clone(),
            courier,
            status: order.status(),
            pickup: order.pickup.place_id.clone(),
            dropoff: order.dropoff.place_id.clone(),
            ready_at: order.ready_at,
            placed: order.created_at,
        }
    }
}

impl OrderWaiting {
    /// The event for a paid order.
    pub fn of(order: &Order) -> Self {
        Self {
            id: order.id.clone(),
            dropoff: order.dropoff.place_id.clone(),
            pickup: order.pickup.place_id.clone(),
            customer: order.customer.clone(),
            since: order.updated_at,
            ready_at: order.ready_at,
        }
    }
}

/// For the dispatcher: a courier's task opened, moved on, or ended.
#[derive(Clone, Debug)]
pub struct TaskChanged {
    /// The order.
    pub id: OrderId,
    /// The courier whose task it is (or was).
    pub courier: OpenId,
    /// The order's status now: assigned or picked up while the task is
    /// open; anything else ends it (delivered, taken back, cancelled).
    pub status: Status,
    /// Where it is picked up.
    pub pickup: crate::domain::PlaceId,
    /// Where it goes.
    pub dropoff: crate::domain::PlaceId,
    /// When it can be picked up.
    pub ready_at: OffsetDateTime,
    /// When the customer placed it (created; the dispatcher prefers the
    /// payment time it saw itself).
    pub placed: OffsetDateTime,
}

/// What the orders shards tell the rest of the service, published to
/// every listener handed to [`Orders::start`]; each takes what concerns it.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum OrderEvent {
    /// A paid order waits for a courier (also re-told on request).
    Waiting(OrderWaiting),
    /// A waiting order left the pool (cancelled before anyone took it).
    Taken(OrderId),
    /// A courier's task opened, moved on, or ended.
    Task(TaskChanged),
    /// An unpaid order's deadline passed.
    PaymentDue(PaymentDue),
    /// An order is refunding.
    RefundDue(RefundDue),
    /// A customer message was written to the outbox.
    OutboxWritten,
}

/// Who hears the shards' [`OrderEvent`]s (fixed when the service starts).
pub type OrderListeners = Arc<[Recipient<OrderEvent>]>;

/// An order as its shard knows it, whoever asks (for other actors; the
/// façade goes through [`Orders::get`], which checks who may see it).
#[derive(Message)]
#[rtype(result = "Result<Option<Order>, OrderError>")]
pub struct Peek {
    /// The order.
    pub id: OrderId,
}

/// Ask a shard to tell its paid and assigned orders again (a listener that
/// (re)started and lost what it knew).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RetellActive;

/// A commit covering this order failed: drop what memory holds of it and
/// read it again from sled (a read that fails restarts the shard).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reload {
    /// The order.
    pub id: OrderId,
}

/// Make the shard panic inside a handler (fault-injection for tests).
#[doc(hidden)]
#[derive(Message)]
#[rtype(result = "Result<(), OrderError>")]
pub struct InjectPanic;

/// One shard: the orders whose id hashes to it.
pub struct OrderShard {
    index: usize,
    count: usize,
    store: OrderRepo,
    config: OrdersConfig,
    // Boxed: the map is rehashed as unpaid orders pile up, and moving
    // pointers instead of whole records keeps that pause short.
    active: HashMap<OrderId, Box<Order>>,
    payment_deadlines: BTreeSet<(OffsetDateTime, OrderId)>,
    gauges: Vec<metrics::Gauge>,
    listeners: OrderListeners,
    confirm_deadlines: BTreeSet<(OffsetDateTime, OrderId)>,
    /// Orders awaiting payment per customer (for `orders.max_unpaid`).
    unpaid: HashMap<OpenId, u32>,
}

impl OrderShard {
    /// A shard; it loads its orders when started.
    pub fn new(
        index: usize,
        count: usize,
        store: OrderRepo,
        config: OrdersConfig,
        listeners: OrderListeners,
    ) -> Self {
        let shard = index.to_string();
        let gauges = ALL_STATUSES
            .iter()
            .map(|s| metrics::gauge!("lastmile_orders_active", "status" => s.as_str(), "shard" => shard.clone()))
            .collect();
        Self {
            index,
            count,
            store,
            config,
            active: HashMap::new(),
            payment_deadlines: BTreeSet::new(),
            gauges,
            listeners,
            confirm_deadlines: BTreeSet::new(),
            unpaid: HashMap::new(),
        }
    }

    fn reload(&mut self) -> Result<(), StorageError> {
        self.active.clear();
        self.payment_deadlines.clear();
        self.confirm_deadlines.clear();
        self.unpaid.clear();
        for gauge in &self.gauges {
            gauge.set(0.0);
        }
        let (index, count) = (self.index, self.count);
        let orders = self
            .store
            .active_orders(|id| shard_of(id, count) == index)?;
        for order in orders {
            self.track(order);
        }
        self.resume_refunds();
        self.retell_active();
        tracing::info!(
            shard = self.index,
            active = self.active.len(),
            "orders shard loaded"
        );
        Ok(())
    }

    /// Puts an order in memory (or drops it when terminal) and keeps its
    /// timers and the per-status gauges in step.
    fn track(&mut self, order: Order) {
        let old_courier = self.active.get(&order.id).and_then(|o| o.courier.clone());
        self.announce_task(old_courier, &order);
        self.untrack(&order.id);
        if order.status().is_terminal() {
            return;
        }
        self.gauge(order.status()).increment(1.0);
        match order.status() {
            Status::AwaitingPayment => {
                *self.unpaid.entry(order.customer.clone()).or_default() += 1;
                self.payment_deadlines
                    .insert((self.payment_deadline(&order), order.id.clone()));
            }
            Status::Delivered => {
                self.confirm_deadlines.insert((
                    order.updated_at + self.config.auto_confirm,
                    order.id.clone(),
                ));
            }
            Status::Paid => self.announce_waiting(&order),
            _ => {}
        }
        self.active.insert(order.id.clone(), Box::new(order));
    }

    /// Drops an order from memory with its timers and counts.
    fn untrack(&mut self, id: &OrderId) {
        if let Some(old) = self.active.remove(id) {
            self.gauge(old.status()).decrement(1.0);
            if old.status() == Status::AwaitingPayment {
                if let Some(n) = self.unpaid.get_mut(&old.customer) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.unpaid.remove(&old.customer);
                    }
                }
                let deadline = self.payment_deadline(&old);
                self.payment_deadlines.remove(&(deadline, old.id));
            } else if old.status() == Status::Delivered {
                let deadline = old.updated_at + self.config.auto_confirm;
                self.confirm_deadlines.remove(&(deadline, old.id));
            }
        }
    }

    /// Re-reads one order from sled after a failed commit.
    fn reload_one(&mut self, id: &OrderId) -> Result<(), StorageError> {
        match self.store.get_active_order(id)? {
            Some(order) => self.track(order),
            None => self.untrack(id),
        }
        Ok(())
    }

    fn gauge(&self, status: Status) -> &metrics::Gauge {
        let i = ALL_STATUSES.iter().position(|s| *s == status).unwrap_or(0);
        &self.gauges[i]
    }

    fn payment_deadline(&self, order: &Order) -> OffsetDateTime {
        order.created_at + self.config.payment_timeout
    }

    /// The current record: from memory when active, else from sled.
    fn load(&self, id: &OrderId) -> Result<Option<Order>, OrderError> {
        match self.active.get(id) {
            Some(o) => Ok(Some(Order::clone(o))),
            None => Ok(self.store.get_order(id)?),
        }
    }

    fn create(
        &mut self,
        CreateOrder {
            customer,
            order,
            key,
        }: CreateOrder,
    ) -> Result<Order, OrderError> {
        let now = now_utc();
        if let Some(key) = &key {
            // The customer's shard is the only writer of their keys, so
            // check-then-insert cannot race.
            if let Some(id) =
                self.store
                    .idempotent_order(&customer, key, idempotency_cutoff(now))?
            {
                return self.load(&id)?.ok_or(OrderError::NotFound);
            }
        }
        let max = self.config.max_unpaid;
        if self.unpaid.get(&customer).copied().unwrap_or(0) >= max {
            return Err(OrderError::TooManyUnpaid(max));
        }
        let kind = order.kind.as_str();
        let order = Order::new(OrderId::generate(&customer, now), customer, order, now);
        self.store.insert_new_order(&order, key.as_ref())?;
        metrics::counter!("lastmile_orders_created_total", "kind" => kind).increment(1);
        self.track(order.clone());
        Ok(order)
    }

    /// Applies `event` to a stored copy, persists it, and only then updates memory.
    fn transition(&mut self, id: &OrderId, event: Event) -> Result<Order, OrderError> {
        let mut order = self.load(id)?.ok_or(OrderError::NotFound)?;
        let was_terminal = order.status().is_terminal();
        let to = order.apply(event, now_utc())?;
        self.save(&order, was_terminal)?;
        metrics::counter!("lastmile_order_transitions_total", "to" => to.as_str()).increment(1);
        self.track(order.clone());
        Ok(order)
    }

    fn cancel(&mut self, CancelOrder { id, by }: CancelOrder) -> Result<Order, OrderError> {
        let order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        if !order.visible_to(&by) {
            return Err(OrderError::NotFound);
        }
        if order.customer != by {
            return Err(OrderError::Forbidden(
                "only the customer may cancel an order",
            ));
        }
        let order = self.transition(&id, Event::Cancel)?;
        if order.status() == Status::Refunding {
            self.refund_due(&order);
            self.publish(OrderEvent::Taken(order.id.clone()));
        }
        Ok(order)
    }

    fn confirm_payment(&mut self, id: &OrderId) -> Result<PaymentOutcome, OrderError> {
        let order = self.load(id)?.ok_or(OrderError::NotFound)?;
        match order.status() {
            Status::AwaitingPayment => Ok(PaymentOutcome::Paid(
                self.transition(id, Event::PaymentConfirmed)?,
            )),
            Status::Cancelled => {
                let order = self.transition(id, Event::PaymentConfirmed)?;
                self.refund_due(&order);
                Ok(PaymentOutcome::RefundNeeded(order))
            }
            _ => Ok(PaymentOutcome::AlreadyPaid(order)),
        }
    }

    fn cancel_unpaid(&mut self, id: &OrderId) -> Result<Order, OrderError> {
        let order = self.load(id)?.ok_or(OrderError::NotFound)?;
        if order.status() == Status::AwaitingPayment {
            self.transition(id, Event::Cancel)
        } else {
            Ok(order)
        }
    }

    fn confirm_refund(&mut self, id: &OrderId) -> Result<Order, OrderError> {
        let order = self.load(id)?.ok_or(OrderError::NotFound)?;
        if order.status() == Status::Refunding {
            self.transition(id, Event::RefundConfirmed)
        } else {
            Ok(order)
        }
    }

    /// Tells every listener.
    fn publish(&self, event: OrderEvent) {
        publish(&self.listeners, event);
    }

    /// Tells the payments actor to refund `order`, once its `refunding`
    /// state is on disk.
    fn refund_due(&self, order: &Order) {
        let due = RefundDue {
            id: order.id.clone(),
            fee_fen: order.fee_fen.get(),
        };
        let (store, listeners) = (self.store.clone(), self.listeners.clone());
        actix::spawn(async move {
            match store.commit().await {
                Ok(()) => publish(&listeners, OrderEvent::RefundDue(due)),
                Err(e) => {
                    tracing::error!(order = %due.id, error = %e, "refund not started yet: commit failed; the shard asks again")
                }
            }
        });
    }

    /// Persists a change, with the customer's message in the same write
    /// when the new status announces one.
    fn save(&self, order: &Order, was_terminal: bool) -> Result<(), OrderError> {
        let message = match MessageKind::for_status(order.status()) {
            Some(kind) => {
                let now_ms = crate::domain::unix_ms(now_utc());
                Some(OutboxEntry {
                    id: self.store.next_id()?,
                    order_id: order.id.clone(),
                    to: order.customer.clone(),
                    kind,
                    created_at_ms: now_ms,
                    attempts: 0,
                    next_attempt_ms: now_ms,
                    via: None,
                })
            }
            None => None,
        };
        self.store
            .update_order_with(order, was_terminal, message.as_ref())?;
        if message.is_some() {
            self.publish(OrderEvent::OutboxWritten);
        }
        Ok(())
    }

    /// Tells the dispatcher when a courier's task opens, moves on or ends
    /// (`before` is who had it until this change).
    fn announce_task(&self, before: Option<OpenId>, order: &Order) {
        let open = matches!(order.status(), Status::Assigned | Status::PickedUp);
        if let (Some(courier), true) = (&order.courier, open) {
            self.publish(OrderEvent::Task(TaskChanged::of(order, courier.clone())));
        }
        if let Some(before) = before {
            if !open || order.courier.as_ref() != Some(&before) {
                self.publish(OrderEvent::Task(TaskChanged::of(order, before)));
            }
        }
    }

    /// Tells the dispatcher a paid order waits for a courier.
    fn announce_waiting(&self, order: &Order) {
        self.publish(OrderEvent::Waiting(OrderWaiting::of(order)));
    }

    /// Tells the listeners every paid, assigned and picked-up order again.
    fn retell_active(&self) {
        for order in self.active.values() {
            match order.status() {
                Status::Paid => self.announce_waiting(order),
                Status::Assigned | Status::PickedUp => self.announce_task(None, order),
                _ => {}
            }
        }
    }

    fn assign(
        &mut self,
        AssignCourier { id, courier }: AssignCourier,
    ) -> Result<Order, OrderError> {
        let mut order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        if order.customer == courier {
            return Err(OrderError::Forbidden(
                "a courier never takes their own order",
            ));
        }
        order.assign(courier, now_utc())?;
        self.save(&order, false)?;
        metrics::counter!("lastmile_order_transitions_total", "to" => "assigned").increment(1);
        self.track(order.clone());
        Ok(order)
    }

    fn unassign(
        &mut self,
        UnassignOrder { id, courier }: UnassignOrder,
    ) -> Result<Order, OrderError> {
        let mut order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        if order.courier.as_ref() != Some(&courier) {
            return Err(OrderError::Forbidden("the order is not this courier's"));
        }
        order.unassign(now_utc())?;
        self.store.update_order(&order, false)?;
        metrics::counter!("lastmile_order_transitions_total", "to" => "paid").increment(1);
        self.track(order.clone());
        Ok(order)
    }

    fn take_step(&mut self, TakeStep { id, by, step }: TakeStep) -> Result<Order, OrderError> {
        let order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        if !order.visible_to(&by) {
            return Err(OrderError::NotFound);
        }
        let (allowed, event) = match step {
            Step::PickUp => (order.courier.as_ref() == Some(&by), Event::PickUp),
            Step::Deliver => (order.courier.as_ref() == Some(&by), Event::Deliver),
            Step::Confirm => (order.customer == by, Event::Confirm),
        };
        if !allowed {
            return Err(OrderError::Forbidden(match step {
                Step::Confirm => "only the customer may confirm receipt",
                _ => "only the assigned courier may do this",
            }));
        }
        self.transition(&id, event)
    }

    /// Completes delivered orders nobody confirmed within `orders.auto_confirm`.
    fn auto_confirm(&mut self) -> usize {
        let now = now_utc();
        let mut done = 0;
        while let Some((deadline, id)) = self.confirm_deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            self.confirm_deadlines.pop_first();
            match self.transition(&id, Event::Confirm) {
                Ok(_) => done += 1,
                Err(e) => tracing::debug!(order = %id, error = %e, "auto-confirm skipped"),
            }
        }
        done
    }

    /// Restarts refunds a crash or restart interrupted.
    fn resume_refunds(&self) {
        for order in self.active.values() {
            if order.status() == Status::Refunding {
                self.refund_due(order);
            }
        }
    }

    /// Hands every unpaid order whose payment deadline has passed to the
    /// payments actor: WeChat Pay decides (it queries, closes, and answers
    /// with `ConfirmPayment` or `CancelUnpaid`); asked again until settled.
    fn expire_unpaid(&mut self) -> usize {
        let now = now_utc();
        let mut expired = 0;
        while let Some((deadline, id)) = self.payment_deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            self.payment_deadlines.pop_first();
            let Some(fee_fen) = self
                .active
                .get(&id)
                .filter(|o| o.status() == Status::AwaitingPayment)
                .map(|o| o.fee_fen.get())
            else {
                continue;
            };
            self.publish(OrderEvent::PaymentDue(PaymentDue {
                id: id.clone(),
                fee_fen,
            }));
            self.payment_deadlines.insert((now + PAYMENT_DUE_RETRY, id));
            expired += 1;
        }
        expired
    }

    /// Forgets this shard's customers' idempotency keys older than a day
    /// (off the shard's thread: it scans the whole tree).
    fn sweep_idempotency(&self) {
        let (store, index, count) = (self.store.clone(), self.index, self.count);
        let since_ms = idempotency_cutoff(now_utc());
        actix::spawn(async move {
            let swept = tokio::task::spawn_blocking(move || {
                store.prune_idempotency(since_ms, |c| shard_of_customer(c, count) == index)
            })
            .await;
            match swept {
                Ok(Ok(n)) if n > 0 => {
                    tracing::info!(shard = index, forgotten = n, "idempotency keys expired")
                }
                Ok(Err(e)) => tracing::warn!(shard = index, error = %e, "idempotency sweep failed"),
                _ => {}
            }
        });
    }

    fn timer_tick(&self) -> Duration {
        (self.config.payment_timeout / 4).clamp(MIN_TIMER_TICK, MAX_TIMER_TICK)
    }

    /// Runs `f`, turning a panic into a shard restart and a 503 for the caller.
    fn guarded<R>(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut Self) -> Result<R, OrderError>,
    ) -> Result<R, OrderError> {
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(result) => result,
            Err(_) => {
                tracing::error!(
                    shard = self.index,
                    "orders shard panicked; restarting from sled"
                );
                metrics::counter!("lastmile_actor_restarts_total", "actor" => "orders")
                    .increment(1);
                ctx.stop();
                Err(OrderError::Unavailable)
            }
        }
    }
}

impl Actor for OrderShard {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Err(e) = self.reload() {
            // Without its state the shard must not answer; stopping lets the
            // supervisor try again, and callers get 503 meanwhile.
            tracing::error!(shard = self.index, error = %e, "orders shard cannot load; stopping");
            ctx.stop();
            return;
        }
        ctx.run_interval(IDEMPOTENCY_SWEEP_EVERY, |act, _| act.sweep_idempotency());
        ctx.run_interval(REFUND_RESEND_EVERY, |act, _| act.resume_refunds());
        ctx.run_interval(self.timer_tick(), |act, ctx| {
            let expired = act.guarded(ctx, |act| Ok(act.expire_unpaid() + act.auto_confirm()));
            if let Ok(n) = expired {
                if n > 0 {
                    tracing::info!(
                        shard = act.index,
                        due = n,
                        "unpaid orders past their deadline"
                    );
                    let store = act.store.clone();
                    actix::spawn(async move {
                        if let Err(e) = store.commit().await {
                            tracing::error!(error = %e, "commit after payment timeout failed");
                        }
                    });
                }
            }
        });
    }
}

impl Supervised for OrderShard {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!(shard = self.index, "orders shard restarting");
        self.active.clear();
        self.payment_deadlines.clear();
    }
}

impl Handler<CreateOrder> for OrderShard {
    type Result = Result<Order, OrderError>;

    #[tracing::instrument(level = "debug", name = "create_order", skip_all, fields(shard = self.index))]
    fn handle(&mut self, msg: CreateOrder, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.create(msg))
    }
}

impl Handler<CancelOrder> for OrderShard {
    type Result = Result<Order, OrderError>;

    #[tracing::instrument(level = "debug", name = "cancel_order", skip_all, fields(shard = self.index, order = %msg.id))]
    fn handle(&mut self, msg: CancelOrder, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.cancel(msg))
    }
}

impl Handler<ConfirmPayment> for OrderShard {
    type Result = Result<PaymentOutcome, OrderError>;

    #[tracing::instrument(level = "debug", name = "confirm_payment", skip_all, fields(order = %msg.id))]
    fn handle(&mut self, msg: ConfirmPayment, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.confirm_payment(&msg.id))
    }
}

impl Handler<CancelUnpaid> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: CancelUnpaid, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.cancel_unpaid(&msg.id))
    }
}

impl Handler<ConfirmRefund> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: ConfirmRefund, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.confirm_refund(&msg.id))
    }
}

impl Handler<AssignCourier> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: AssignCourier, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.assign(msg))
    }
}

impl Handler<UnassignOrder> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: UnassignOrder, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.unassign(msg))
    }
}

impl Handler<TakeStep> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: TakeStep, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.take_step(msg))
    }
}

impl Handler<Peek> for OrderShard {
    type Result = Result<Option<Order>, OrderError>;

    fn handle(&mut self, Peek { id }: Peek, _: &mut Self::Context) -> Self::Result {
        self.load(&id)
    }
}

impl Handler<RetellActive> for OrderShard {
    type Result = ();

    fn handle(&mut self, _: RetellActive, _: &mut Self::Context) {
        self.retell_active();
    }
}

impl Handler<Reload> for OrderShard {
    type Result = ();

    fn handle(&mut self, Reload { id }: Reload, ctx: &mut Self::Context) {
        if let Err(e) = self.reload_one(&id) {
            tracing::error!(shard = self.index, error = %e, "cannot re-read an order; restarting");
            ctx.stop();
        }
    }
}

impl Handler<InjectPanic> for OrderShard {
    type Result = Result<(), OrderError>;

    fn handle(&mut self, _: InjectPanic, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |_| panic!("fault injected into orders shard"))
    }
}

/// Idempotency keys of orders made before this (unix ms) are forgotten.
fn idempotency_cutoff(now: OffsetDateTime) -> u64 {
    crate::domain::unix_ms(now - IDEMPOTENCY_TTL).max(0) as u64
}

/// Which of `count` shards owns `id`.
pub fn shard_of(id: &OrderId, count: usize) -> usize {
    (stable_hash(id.shard_key()) % count.max(1) as u64) as usize
}

/// Which of `count` shards owns `customer`'s orders (the same shard as
/// [`shard_of`] gives for any id generated for them).
pub fn shard_of_customer(customer: &OpenId, count: usize) -> usize {
    (stable_hash(&OrderId::customer_prefix(customer)) % count.max(1) as u64) as usize
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
    store: OrderRepo,
}

impl Orders {
    /// Starts `config.shards` supervised shards, each on its own arbiter
    /// thread. Their addresses exist at once (the dispatcher and payments
    /// need this handle to start); each shard begins when
    /// [`OrdersWiring::listen`] hands it its listeners.
    pub fn start(store: OrderRepo, config: OrdersConfig) -> (Self, OrdersWiring) {
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
        &self.shards[shard_of(id, self.shards.len())]
    }

    /// Creates an order; with an idempotency key a replay returns the first one.
    pub async fn create(
        &self,
        customer: OpenId,
        order: NewOrder,
        key: Option<IdempotencyKey>,
    ) -> Result<Order, OrderError> {
        let shard = &self.shards[shard_of_customer(&customer, self.shards.len())];
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

    /// Gives a paid order to a courier (durable before it returns).
    pub async fn assign(&self, id: OrderId, courier: OpenId) -> Result<Order, OrderError> {
        let order = self
            .shard(&id)
            .send(AssignCourier {
                id: id.clone(),
                courier,
            })
            .await??;
        self.durable(&id, order).await
    }

    /// Takes an assigned order back from an offline courier.
    pub async fn unassign(&self, id: OrderId, courier: OpenId) -> Result<Order, OrderError> {
        let order = self
            .shard(&id)
            .send(UnassignOrder {
                id: id.clone(),
                courier,
            })
            .await??;
        self.durable(&id, order).await
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
