//! One orders shard: the only owner of its orders' state machine, timers
//! and storage writes.

use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use actix::prelude::*;
use time::OffsetDateTime;

use crate::domain::MoneyEvent;
use crate::domain::{
    now_utc, ChangedBy, Event, MessageKind, OpenId, Order, OrderId, OutboxEntry, Status,
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
        let (index, count) = (self.index, self.count);
        let orders = self
            .store
            .active_orders(|id| shard_of(id, count) == index)?;
        for order in orders {
            self.track(order);
        }
        // Finished orders of the last days are in the archive: read once
        // here, then kept up to date as orders change.
        let since = crate::domain::unix_ms(now_utc() - RECENT).max(0) as u64;
        self.recent = self
            .store
            .orders_created_since(since, |id| shard_of(id, count) == index)?
            .iter()
            .map(|o| (o.id.clone(), super::figures::Snapshot::of(o)))
            .collect();
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
    fn transition(
        &mut self,
        id: &OrderId,
        event: Event,
        by: ChangedBy,
    ) -> Result<Order, OrderError> {
        self.transition_noted(id, event, by, String::new())
    }

    /// [`Self::transition`] with the reason kept in the history.
    fn transition_noted(
        &mut self,
        id: &OrderId,
        event: Event,
        by: ChangedBy,
        note: String,
    ) -> Result<Order, OrderError> {
        let mut order = self.load(id)?.ok_or(OrderError::NotFound)?;
        let was_terminal = order.status().is_terminal();
        let to = order.apply(event, by, now_utc())?;
        if !note.is_empty() {
            order.explain_last(note);
        }
        self.record_change(&order, was_terminal, event, to)?;
        Ok(order)
    }

    /// Writes an order that `event` just took to `to`, with the message
    /// and money the change brings, counts it and tracks the result.
    fn record_change(
        &mut self,
        order: &Order,
        was_terminal: bool,
        event: Event,
        to: Status,
    ) -> Result<(), OrderError> {
        self.save(order, was_terminal, MoneyEvent::of_change(order, event))?;
        metrics::counter!("lastmile_order_transitions_total", "to" => to.as_str()).increment(1);
        self.track(order.clone());
        Ok(())
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
        let order = self.transition(&id, Event::Cancel, ChangedBy::Customer)?;
        if order.status() == Status::Refunding {
            self.refund_started(&order);
        }
        Ok(order)
    }

    fn confirm_payment(&mut self, id: &OrderId) -> Result<PaymentOutcome, OrderError> {
        let order = self.load(id)?.ok_or(OrderError::NotFound)?;
        match order.status() {
            Status::AwaitingPayment => Ok(PaymentOutcome::Paid(self.transition(
                id,
                Event::PaymentConfirmed,
                ChangedBy::WeChatPay,
            )?)),
            Status::Cancelled => {
                let order = self.transition(id, Event::PaymentConfirmed, ChangedBy::WeChatPay)?;
                self.refund_due(&order);
                Ok(PaymentOutcome::RefundNeeded(order))
            }
            _ => Ok(PaymentOutcome::AlreadyPaid(order)),
        }
    }

    fn cancel_unpaid(&mut self, id: &OrderId) -> Result<Order, OrderError> {
        let order = self.load(id)?.ok_or(OrderError::NotFound)?;
        if order.status() == Status::AwaitingPayment {
            self.transition(id, Event::Cancel, ChangedBy::Timer)
        } else {
            Ok(order)
        }
    }

    fn confirm_refund(&mut self, id: &OrderId) -> Result<Order, OrderError> {
        let order = self.load(id)?.ok_or(OrderError::NotFound)?;
        if order.status() == Status::Refunding {
            let event = if order.refund_is_partial() {
                Event::PartRefundConfirmed
            } else {
                Event::RefundConfirmed
            };
            self.transition(id, event, ChangedBy::WeChatPay)
        } else {
            Ok(order)
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

    /// Tells the ledger there is money in its inbox. Not waiting for the
    /// disk: the ledger's postings land after the order's write in sled's
    /// log, so no crash keeps them without it, and every answer the
    /// ledger gives waits for its own writes to be on disk.
    fn money_written(&self) {
        publish(&self.listeners, OrderEvent::MoneyWritten);
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
        let messages = kinds
            .into_iter()
            .map(|kind| self.outbox_entry(order, kind))
            .collect::<Result<Vec<_>, OrderError>>()?;
        self.store
            .update_order_with(order, was_terminal, &messages, &money)?;
        if !messages.is_empty() {
            self.publish(OrderEvent::OutboxWritten);
        }
        if !money.is_empty() {
            self.money_written();
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
        AssignCourier {
            id,
            courier,
            by,
            take_over,
            campus,
        }: AssignCourier,
    ) -> Result<Order, OrderError> {
        let mut order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        if !campus.holds(&order) {
            return Err(OrderError::Conflict(
                "the order is on another campus than the courier works on",
            ));
        }
        if order.customer == courier {
            return Err(OrderError::Forbidden(
                "a courier never takes their own order",
            ));
        }
        let now = now_utc();
        if take_over && order.status() == Status::Assigned {
            if order.courier.as_ref() == Some(&courier) {
                return Err(OrderError::Transition(crate::domain::TransitionError {
                    from: Status::Assigned,
                    event: crate::domain::EventName(Event::Assign),
                }));
            }
            order.unassign(by.clone(), now)?;
        }
        order.assign(courier, by, now)?;
        self.save(&order, false, Vec::new())?;
        metrics::counter!("lastmile_order_transitions_total", "to" => "assigned").increment(1);
        self.track(order.clone());
        Ok(order)
    }

    fn unassign(
        &mut self,
        UnassignOrder {
            id,
            courier,
            by,
            note,
        }: UnassignOrder,
    ) -> Result<Order, OrderError> {
        let mut order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        if order.courier.as_ref() != Some(&courier) {
            return Err(OrderError::Forbidden("the order is not this courier's"));
        }
        order.unassign(by, now_utc())?;
        if !note.is_empty() {
            order.explain_last(note);
        }
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
        let (allowed, event, actor) = match step {
            Step::PickUp => (
                order.courier.as_ref() == Some(&by),
                Event::PickUp,
                ChangedBy::Courier(by.clone()),
            ),
            Step::Deliver(_) => (
                order.courier.as_ref() == Some(&by),
                Event::Deliver,
                ChangedBy::Courier(by.clone()),
            ),
            Step::Confirm => (order.customer == by, Event::Confirm, ChangedBy::Customer),
        };
        if !allowed {
            return Err(OrderError::Forbidden(match step {
                Step::Confirm => "only the customer may confirm receipt",
                _ => "only the assigned courier may do this",
            }));
        }
        match step {
            Step::Deliver(photo) => self.deliver(order, photo, actor),
            _ => self.transition(&id, event, actor),
        }
    }

    /// The hand-over, with its photo when one was taken (required when
    /// `orders.delivery_photo = "required"`).
    fn deliver(
        &mut self,
        mut order: Order,
        photo: Option<crate::domain::UploadId>,
        by: ChangedBy,
    ) -> Result<Order, OrderError> {
        if photo.is_none() && self.config.delivery_photo_required {
            return Err(OrderError::Invalid(crate::domain::ValidationError(
                "photo is required: this campus asks for a photo of every hand-over".into(),
            )));
        }
        let to = order.apply(Event::Deliver, by, now_utc())?;
        order.extras.delivery_photo = photo;
        self.record_change(&order, false, Event::Deliver, to)?;
        Ok(order)
    }

    fn open_dispute(
        &mut self,
        OpenDispute { id, by, dispute }: OpenDispute,
    ) -> Result<Order, OrderError> {
        let mut order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        if !order.visible_to(&by) {
            return Err(OrderError::NotFound);
        }
        if order.customer != by {
            return Err(OrderError::Forbidden(
                "only the customer may dispute an order",
            ));
        }
        if order.extras.dispute.is_some() {
            return Err(OrderError::Conflict("this order was disputed already"));
        }
        let to = order.open_dispute(dispute, now_utc())?;
        self.record_change(&order, false, Event::Dispute, to)?;
        metrics::counter!("lastmile_disputes_total", "outcome" => "opened").increment(1);
        Ok(order)
    }

    /// Settles a dispute; the shard orders two operators' answers, so the
    /// second finds it resolved (409).
    fn resolve_dispute(
        &mut self,
        ResolveDispute {
            id,
            refund_fen,
            note,
            by,
        }: ResolveDispute,
    ) -> Result<Order, OrderError> {
        let mut order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        let to = order
            .resolve(refund_fen, note, by, now_utc())
            .map_err(|e| match e {
                crate::domain::ResolveError::Invalid(v) => OrderError::Invalid(v),
                crate::domain::ResolveError::Transition(t) => OrderError::Transition(t),
            })?;
        let event = if to == Status::Refunding {
            Event::ResolveRefund
        } else {
            Event::Resolve
        };
        self.record_change(&order, false, event, to)?;
        let outcome = match refund_fen {
            0 => "no_refund",
            r if r < order.total_fen() => "part_refund",
            _ => "full_refund",
        };
        metrics::counter!("lastmile_disputes_total", "outcome" => outcome).increment(1);
        if to == Status::Refunding {
            self.refund_due(&order);
        }
        Ok(order)
    }

    /// Marks when WeChat took the delivery (once; no message, no money).
    fn shipping_reported(
        &mut self,
        ShippingReported { id, at }: ShippingReported,
    ) -> Result<(), OrderError> {
        let Some(mut order) = self.load(&id)? else {
            return Ok(());
        };
        if order.extras.shipping_reported_at.is_some() {
            return Ok(());
        }
        order.extras.shipping_reported_at = Some(at);
        let terminal = order.status().is_terminal();
        self.store.update_order_with(&order, terminal, &[], &[])?;
        if !terminal {
            self.track(order);
        }
        Ok(())
    }

    fn operator_refund(
        &mut self,
        OperatorRefund { id, by, note }: OperatorRefund,
    ) -> Result<Order, OrderError> {
        let order = self.transition_noted(&id, Event::OperatorRefund, by, note)?;
        self.refund_started(&order);
        Ok(order)
    }

    /// A refund WeChat Pay gave up on: it waits for an operator, and the
    /// shard stops asking for it (only `refunding` orders are re-sent).
    fn fail_refund(&mut self, FailRefund { id, note }: FailRefund) -> Result<Order, OrderError> {
        let order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        if order.status() != Status::Refunding {
            return Ok(order);
        }
        self.transition_noted(&id, Event::RefundFailed, ChangedBy::WeChatPay, note)
    }

    fn settle_refund(
        &mut self,
        SettleRefund { id, by, note }: SettleRefund,
    ) -> Result<Order, OrderError> {
        let partial = self.load(&id)?.is_some_and(|o| o.refund_is_partial());
        let event = if partial {
            Event::PartRefundSettled
        } else {
            Event::RefundSettled
        };
        self.transition_noted(&id, event, by, note)
    }

    fn add_note(&mut self, AddNote { id, by, note }: AddNote) -> Result<Order, OrderError> {
        let mut order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        let terminal = order.status().is_terminal();
        order.note(by, note, now_utc());
        self.store.update_order(&order, terminal)?;
        self.track(order.clone());
        Ok(order)
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
            match self.transition(&id, Event::Confirm, ChangedBy::Timer) {
                Ok(_) => done += 1,
                Err(e) => tracing::debug!(order = %id, error = %e, "auto-confirm skipped"),
            }
        }
        done
    }

    /// Tells the customers of paid orders nobody took that they wait, once,
    /// and refunds those still untaken after `untaken_refund_after`.
    fn handle_untaken(&mut self) -> usize {
        let now = now_utc();
        let mut acted = 0;
        while let Some((deadline, id)) = self.untaken_deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            self.untaken_deadlines.pop_first();
            let Some(order) = self.active.get(&id).map(|o| Order::clone(o)) else {
                continue;
            };
            if order.status() != Status::Paid {
                continue;
            }
            let paid = order.paid_at().unwrap_or(order.updated_at);
            let done = if now >= paid + self.config.untaken_refund_after {
                self.refund_untaken(&id)
            } else {
                self.notice_untaken(order)
            };
            match done {
                Ok(()) => acted += 1,
                Err(e) => {
                    tracing::warn!(order = %id, error = %e, "untaken order not handled; retrying");
                    self.untaken_deadlines.insert((now + PAYMENT_DUE_RETRY, id));
                }
            }
        }
        acted
    }

    /// An outbox entry of `kind` about `order`, for its customer, due now.
    fn outbox_entry(&self, order: &Order, kind: MessageKind) -> Result<OutboxEntry, OrderError> {
        let now_ms = crate::domain::unix_ms(now_utc());
        Ok(OutboxEntry {
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

    /// Writes the customer's "nobody has taken it yet" message with the
    /// mark that it was sent, in one write.
    fn notice_untaken(&mut self, mut order: Order) -> Result<(), OrderError> {
        order.extras.untaken_noticed = true;
        let message = self.outbox_entry(&order, MessageKind::Untaken)?;
        self.store
            .update_order_with(&order, false, &[message], &[])?;
        self.publish(OrderEvent::OutboxWritten);
        metrics::counter!("lastmile_untaken_orders_total", "action" => "notice").increment(1);
        self.track(order);
        Ok(())
    }

    /// Nobody took it in time: the money goes back.
    fn refund_untaken(&mut self, id: &OrderId) -> Result<(), OrderError> {
        let hours = self.config.untaken_refund_after.as_secs_f64() / 3600.0;
        let note = format!("nobody took it within {hours:.1} h");
        let order = self.transition_noted(id, Event::Cancel, ChangedBy::Timer, note)?;
        metrics::counter!("lastmile_untaken_orders_total", "action" => "refund").increment(1);
        self.refund_started(&order);
        Ok(())
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
            let Some(total_fen) = self
                .active
                .get(&id)
                .filter(|o| o.status() == Status::AwaitingPayment)
                .map(|o| o.total_fen())
            else {
                continue;
            };
            self.publish(OrderEvent::PaymentDue(PaymentDue {
                id: id.clone(),
                total_fen,
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

impl Handler<OperatorRefund> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: OperatorRefund, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.operator_refund(msg))
    }
}

impl Handler<ShippingReported> for OrderShard {
    type Result = Result<(), OrderError>;

    fn handle(&mut self, msg: ShippingReported, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.shipping_reported(msg))
    }
}

impl Handler<FailRefund> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: FailRefund, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.fail_refund(msg))
    }
}

impl Handler<SettleRefund> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: SettleRefund, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.settle_refund(msg))
    }
}

impl Handler<AddNote> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: AddNote, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.add_note(msg))
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

impl Handler<CourierUnsettled> for OrderShard {
    type Result = MessageResult<CourierUnsettled>;

    fn handle(
        &mut self,
        CourierUnsettled { courier }: CourierUnsettled,
        _: &mut Self::Context,
    ) -> Self::Result {
        MessageResult(
            self.active
                .values()
                .filter(|o| o.courier.as_ref() == Some(&courier))
                .filter(|o| {
                    matches!(
                        o.status(),
                        Status::Assigned | Status::PickedUp | Status::Delivered | Status::Disputed
                    )
                })
                .map(|o| Order::clone(o))
                .collect(),
        )
    }
}

impl Handler<OpenDispute> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: OpenDispute, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.open_dispute(msg))
    }
}

impl Handler<ResolveDispute> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: ResolveDispute, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.resolve_dispute(msg))
    }
}

impl Handler<OpenDisputes> for OrderShard {
    type Result = MessageResult<OpenDisputes>;

    fn handle(&mut self, _: OpenDisputes, _: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.active
                .values()
                .filter(|o| o.status() == Status::Disputed)
                .map(|o| Order::clone(o))
                .collect(),
        )
    }
}

impl Handler<SnapshotsSince> for OrderShard {
    type Result = MessageResult<SnapshotsSince>;

    fn handle(
        &mut self,
        SnapshotsSince { since, campus }: SnapshotsSince,
        _: &mut Self::Context,
    ) -> Self::Result {
        MessageResult(
            self.recent
                .values()
                .filter(|s| s.created_at >= since)
                .filter(|s| campus.as_ref().is_none_or(|c| c.has(s.campus.as_ref())))
                .cloned()
                .collect(),
        )
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
