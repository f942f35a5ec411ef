//! One orders shard: the only owner of its orders' state machine, timers
//! and storage writes. Here its state, loading, tracking and what it tells
//! others; [`changes`] the changes callers ask for, [`timers`] the ones
//! time makes, [`handlers`] the messages.

mod changes;
mod handlers;
mod timers;

use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use time::OffsetDateTime;

use crate::domain::MoneyEvent;
use crate::domain::{
    now_utc, ChangedBy, Event, MessageKind, OpenId, Order, OrderId, OutboxEntry, Sequence, Status,
    ALL_STATUSES,
};
use crate::storage::{OrderRepo, StorageError};

use super::*;

/// Longest pause between two checks of the payment deadlines.
const MAX_TIMER_TICK: Duration = Duration::from_secs(1);
/// How long a shard waits for the payments actor to settle a due unpaid
/// order before asking again (the first request may have been lost).
const PAYMENT_DUE_RETRY: Duration = Duration::from_secs(10);
/// Shortest pause, so that a tiny configured timeout cannot spin the shard.
const MIN_TIMER_TICK: Duration = Duration::from_millis(20);
/// How often a shard asks again for the refunds of its `refunding` orders
/// (a refund whose first request was lost, or whose notify never came).
const REFUND_RESEND_EVERY: Duration = Duration::from_secs(60);
/// How often a shard forgets its customers' expired idempotency keys.
const IDEMPOTENCY_SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// One shard: the orders whose id hashes to it.
pub struct OrderShard {
    /// Which shard this is: the orders it owns, as storage is told.
    shard: Shard,
    /// Ids of outbox entries and money events, increasing store-wide.
    ids: Sequence,
    store: Arc<dyn OrderRepo>,
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
    /// Paid orders nobody has taken, by when the untaken rule acts next
    /// (tell the customer, then refund).
    untaken_deadlines: BTreeSet<(OffsetDateTime, OrderId)>,
    /// What the day figures need of this shard's orders created within
    /// [`RECENT`], kept as they change: the console never scans storage.
    recent: HashMap<OrderId, super::figures::Snapshot>,
}

/// How far back the shard keeps its orders' snapshots: the campus day
/// asked about started at most a day ago, whatever the time zone.
const RECENT: time::Duration = time::Duration::hours(48);
/// How often snapshots older than [`RECENT`] are dropped.
const RECENT_PRUNE_EVERY: Duration = Duration::from_secs(3600);

impl OrderShard {
    /// A shard; it loads its orders when started.
    pub fn new(
        index: usize,
        count: usize,
        store: Arc<dyn OrderRepo>,
        config: OrdersConfig,
        listeners: OrderListeners,
    ) -> Self {
        let label = index.to_string();
        let gauges = ALL_STATUSES
            .iter()
            .map(|s| metrics::gauge!("lastmile_orders_active", "status" => s.as_str(), "shard" => label.clone()))
            .collect();
        Self {
            shard: Shard { index, count },
            ids: store.ids(),
            store,
            config,
            active: HashMap::new(),
            payment_deadlines: BTreeSet::new(),
            gauges,
            listeners,
            confirm_deadlines: BTreeSet::new(),
            untaken_deadlines: BTreeSet::new(),
            unpaid: HashMap::new(),
            recent: HashMap::new(),
        }
    }

    fn reload(&mut self) -> Result<(), StorageError> {
        self.active.clear();
        self.payment_deadlines.clear();
        self.confirm_deadlines.clear();
        self.untaken_deadlines.clear();
        self.unpaid.clear();
        for gauge in &self.gauges {
            gauge.set(0.0);
        }
        let orders = self.store.active_orders(self.shard)?;
        for order in orders {
            self.track(order);
        }
        // Finished orders of the last days are in the archive: read once
        // here, then kept up to date as orders change.
        let since = crate::domain::unix_ms(now_utc() - RECENT).max(0) as u64;
        self.recent = self
            .store
            .orders_created_since(since, self.shard)?
            .iter()
            .map(|o| (o.id.clone(), super::figures::Snapshot::of(o)))
            .collect();
        self.resume_refunds();
        self.retell_active();
        tracing::info!(
            shard = self.shard.index,
            active = self.active.len(),
            "orders shard loaded"
        );
        Ok(())
    }

    /// Puts an order in memory (or drops it when terminal) and keeps its
    /// timers and the per-status gauges in step.
    fn track(&mut self, order: Order) {
        if order.created_at > now_utc() - RECENT {
            self.recent
                .insert(order.id.clone(), super::figures::Snapshot::of(&order));
        }
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
            Status::Paid => {
                self.untaken_deadlines
                    .insert((self.untaken_deadline(&order), order.id.clone()));
                self.announce_waiting(&order)
            }
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
            } else if old.status() == Status::Paid {
                let deadline = self.untaken_deadline(&old);
                self.untaken_deadlines.remove(&(deadline, old.id));
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

    /// When the untaken rule next acts on a paid order: its customer is
    /// told after `untaken_notice_after`, it is refunded after
    /// `untaken_refund_after` (both from the payment).
    fn untaken_deadline(&self, order: &Order) -> OffsetDateTime {
        let paid = order.paid_at().unwrap_or(order.updated_at);
        let after = if order.extras.untaken_noticed {
            self.config.untaken_refund_after
        } else {
            self.config
                .untaken_notice_after
                .min(self.config.untaken_refund_after)
        };
        paid + after
    }

    /// The current record: from memory when active, else from sled.
    fn load(&self, id: &OrderId) -> Result<Option<Order>, OrderError> {
        match self.active.get(id) {
            Some(o) => Ok(Some(Order::clone(o))),
            None => Ok(self.store.get_order(id)?),
        }
    }

    /// Tells every listener.
    fn publish(&self, event: OrderEvent) {
        publish(&self.listeners, event);
    }

    /// A paid order became `refunding`: nobody waits for it any more, and
    /// the money goes back.
    fn refund_started(&self, order: &Order) {
        self.refund_due(order);
        self.publish(OrderEvent::Taken(
            order.id.clone(),
            order.extras.campus.clone(),
        ));
    }

    /// Tells the listeners once every write so far is committed: the
    /// notifier and the ledger read what the change wrote, and on a
    /// database another connection sees it only then (their sweeps find
    /// what a failed commit left for a later one).
    fn publish_committed(&self, event: OrderEvent) {
        let (store, listeners) = (self.store.clone(), self.listeners.clone());
        actix::spawn(async move {
            match store.commit().await {
                Ok(()) => publish(&listeners, event),
                Err(e) => tracing::warn!(error = %e, "news not told: the commit failed"),
            }
        });
    }

    /// Tells the payments actor to refund `order`, once its `refunding`
    /// state is on disk.
    fn refund_due(&self, order: &Order) {
        let due = RefundDue {
            id: order.id.clone(),
            total_fen: order.total_fen(),
            refund_fen: order.refund_fen(),
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
    /// Writes a changed order with, atomically, its customer's message and
    /// the money the change moves.
    fn save(
        &self,
        order: &Order,
        was_terminal: bool,
        money: Vec<MoneyEvent>,
    ) -> Result<(), OrderError> {
        let mut kinds: Vec<MessageKind> = MessageKind::for_status(order.status())
            .into_iter()
            .collect();
        if order.status() == Status::Delivered && self.config.shipping_info {
            kinds.push(MessageKind::ShippingInfo);
        }
        let messages: Vec<OutboxEntry> = kinds
            .into_iter()
            .map(|kind| self.outbox_entry(order, kind))
            .collect();
        let now_ms = crate::domain::unix_ms(now_utc());
        let numbered: Vec<(u64, MoneyEvent)> = money
            .into_iter()
            .map(|m| (self.ids.next(now_ms), m))
            .collect();
        self.store
            .update_order_with(order, was_terminal, &messages, &numbered)?;
        if !messages.is_empty() {
            self.publish_committed(OrderEvent::OutboxWritten);
        }
        if !numbered.is_empty() {
            self.publish_committed(OrderEvent::MoneyWritten);
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

    /// An outbox entry of `kind` about `order`, for its customer, due now.
    fn outbox_entry(&self, order: &Order, kind: MessageKind) -> OutboxEntry {
        let now_ms = crate::domain::unix_ms(now_utc());
        OutboxEntry {
            id: self.ids.next(now_ms),
            order_id: order.id.clone(),
            to: order.customer.clone(),
            kind,
            created_at_ms: now_ms,
            attempts: 0,
            next_attempt_ms: now_ms,
            via: None,
        }
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
                    shard = self.shard.index,
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
            tracing::error!(shard = self.shard.index, error = %e, "orders shard cannot load; stopping");
            ctx.stop();
            return;
        }
        ctx.run_interval(IDEMPOTENCY_SWEEP_EVERY, |act, _| act.sweep_idempotency());
        ctx.run_interval(RECENT_PRUNE_EVERY, |act, _| {
            let oldest = now_utc() - RECENT;
            act.recent.retain(|_, s| s.created_at > oldest);
        });
        ctx.run_interval(REFUND_RESEND_EVERY, |act, _| act.resume_refunds());
        ctx.run_interval(self.timer_tick(), |act, ctx| {
            let expired = act.guarded(ctx, |act| {
                Ok(act.expire_unpaid() + act.auto_confirm() + act.handle_untaken())
            });
            if let Ok(n) = expired {
                if n > 0 {
                    tracing::info!(
                        shard = act.shard.index,
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
        tracing::warn!(shard = self.shard.index, "orders shard restarting");
        self.active.clear();
        self.payment_deadlines.clear();
    }
}

/// Idempotency keys of orders made before this (unix ms) are forgotten.
fn idempotency_cutoff(now: OffsetDateTime) -> u64 {
    crate::domain::unix_ms(now - IDEMPOTENCY_TTL).max(0) as u64
}
