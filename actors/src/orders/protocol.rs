//! What callers send an orders shard, and what the shards publish.

use std::sync::Arc;

use actix::prelude::*;
use time::OffsetDateTime;

use crate::domain::{
    ChangedBy, IdempotencyKey, NewDispute, NewOrder, OpenId, OperatorName, Order, OrderId, Status,
    UploadId,
};

use super::*;

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
    /// What it costs, fee plus tip (an orderquery "paid" must match it).
    pub total_fen: u32,
}

/// For the payments actor: an order is `refunding` (on disk); send the
/// money back.
#[derive(Debug, Clone)]
pub struct RefundDue {
    /// The order.
    pub id: OrderId,
    /// What was paid (fee plus tip).
    pub total_fen: u32,
    /// What goes back: all of it, or the part a dispute resolution gave.
    pub refund_fen: u32,
}

/// The customer disputes a delivered order.
#[derive(Message)]
#[rtype(result = "Result<Order, OrderError>")]
pub struct OpenDispute {
    /// The order.
    pub id: OrderId,
    /// Who asks (must be its customer).
    pub by: OpenId,
    /// What they say.
    pub dispute: NewDispute,
}

/// An operator settles a dispute with `refund_fen` back to the customer.
#[derive(Message)]
#[rtype(result = "Result<Order, OrderError>")]
pub struct ResolveDispute {
    /// The order.
    pub id: OrderId,
    /// What goes back, 0 to the total.
    pub refund_fen: u32,
    /// The operator's note.
    pub note: String,
    /// Who.
    pub by: Option<OperatorName>,
}

/// The disputed orders of every shard (the operators' queue).
#[derive(Message)]
#[rtype(result = "Vec<Order>")]
pub struct OpenDisputes;

/// Give a paid order to a courier (from the dispatcher: matching or grab).
#[derive(Message)]
#[rtype(result = "Result<Order, OrderError>")]
pub struct AssignCourier {
    /// The order.
    pub id: OrderId,
    /// The courier.
    pub courier: OpenId,
    /// Who decided (the courier grabbing, the dispatcher, an operator).
    pub by: ChangedBy,
    /// Take it from another courier who has it but has not picked it up
    /// (an operator's reassignment); otherwise only a waiting order.
    pub take_over: bool,
    /// The campus the courier works on; the order must be on it.
    pub campus: CampusOf,
}

/// A campus as an order is checked against it: its id, and whether it is
/// the default campus (the one orders written before campuses are on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampusOf {
    /// The campus.
    pub id: crate::domain::CampusId,
    /// It is the default (first) campus.
    pub is_default: bool,
}

impl CampusOf {
    /// `campus`, one of `campuses`, as orders are checked against it.
    pub fn of(campuses: &crate::campus::Campuses, campus: &crate::campus::Campus) -> Self {
        Self {
            id: campus.campus_id().clone(),
            is_default: campus.campus_id() == campuses.first().campus_id(),
        }
    }

    /// Whether `order` is on this campus.
    pub fn holds(&self, order: &Order) -> bool {
        self.has(order.extras.campus.as_ref())
    }

    /// Whether an order on `campus` (None: the default one) is on this one.
    pub fn has(&self, campus: Option<&crate::domain::CampusId>) -> bool {
        campus.map_or(self.is_default, |c| *c == self.id)
    }
}

/// An operator refunds a paid order whatever became of it.
#[derive(Message)]
#[rtype(result = "Result<Order, OrderError>")]
pub struct OperatorRefund {
    /// The order.
    pub id: OrderId,
    /// Who.
    pub by: ChangedBy,
    /// Why, in the operator's words (kept in the history).
    pub note: String,
}

/// WeChat Pay answered an order's refund as closed or abnormal.
#[derive(Message)]
#[rtype(result = "Result<Order, OrderError>")]
pub struct FailRefund {
    /// The order.
    pub id: OrderId,
    /// WeChat Pay's `refund_status` (kept in the history).
    pub note: String,
}

/// WeChat's shipping-info service took an order's delivery.
#[derive(Message)]
#[rtype(result = "Result<(), OrderError>")]
pub struct ShippingReported {
    /// The order.
    pub id: OrderId,
    /// When WeChat took it.
    pub at: time::OffsetDateTime,
}

/// An operator records that a failed refund was settled by hand.
#[derive(Message)]
#[rtype(result = "Result<Order, OrderError>")]
pub struct SettleRefund {
    /// The order.
    pub id: OrderId,
    /// Who.
    pub by: ChangedBy,
    /// How, in the operator's words (kept in the history).
    pub note: String,
}

/// Records a note in an order's history without changing it.
#[derive(Message)]
#[rtype(result = "Result<Order, OrderError>")]
pub struct AddNote {
    /// The order.
    pub id: OrderId,
    /// Who.
    pub by: ChangedBy,
    /// What.
    pub note: String,
}

/// Take an assigned (not picked up) order back from `courier`.
#[derive(Message)]
#[rtype(result = "Result<Order, OrderError>")]
pub struct UnassignOrder {
    /// The order.
    pub id: OrderId,
    /// The courier it must still belong to.
    pub courier: OpenId,
    /// Who takes it back.
    pub by: ChangedBy,
    /// Why, kept in the history (empty: nothing said).
    pub note: String,
}

/// A courier-or-customer step on an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The assigned courier picked the goods up.
    PickUp,
    /// The assigned courier handed them over (with a photo of it, whose
    /// ownership the caller checked).
    Deliver(Option<UploadId>),
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
    /// Couriers who gave it back (read from its history, so it holds
    /// across restarts): never offered it again.
    pub declined: Vec<OpenId>,
    /// Its campus (None: the default one).
    pub campus: Option<crate::domain::CampusId>,
}

impl TaskChanged {
    /// The event for `order` as `courier`'s task. An order that another
    /// courier has now (an operator's reassignment) reads, for this one, as
    /// taken back: `paid`.
    pub fn of(order: &Order, courier: OpenId) -> Self {
        let someone_else = order.courier.as_ref().is_some_and(|c| *c != courier);
        let status = if someone_else {
            Status::Paid
        } else {
            order.status()
        };
        Self {
            id: order.id.clone(),
            courier,
            status,
            pickup: order.pickup.place_id.clone(),
            dropoff: order.dropoff.place_id.clone(),
            ready_at: order.ready_at,
            placed: order.created_at,
            campus: order.extras.campus.clone(),
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
            declined: order
                .history()
                .iter()
                .filter(|c| c.event == Some(crate::domain::Event::Unassign))
                .filter_map(|c| match &c.by {
                    ChangedBy::Courier(courier) => Some(courier.clone()),
                    _ => None,
                })
                .collect(),
            campus: order.extras.campus.clone(),
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
    /// Its campus (None: the default one).
    pub campus: Option<crate::domain::CampusId>,
}

/// What the orders shards tell the rest of the service, published to
/// every listener handed to [`Orders::start`]; each takes what concerns it.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum OrderEvent {
    /// A paid order waits for a courier (also re-told on request).
    Waiting(OrderWaiting),
    /// A waiting order left the pool (cancelled before anyone took it),
    /// with its campus (None: the default one).
    Taken(OrderId, Option<crate::domain::CampusId>),
    /// A courier's task opened, moved on, or ended.
    Task(TaskChanged),
    /// An unpaid order's deadline passed.
    PaymentDue(PaymentDue),
    /// An order is refunding.
    RefundDue(RefundDue),
    /// A customer message was written to the outbox.
    OutboxWritten,
    /// A money event was written to the ledger's inbox (and is on disk).
    MoneyWritten,
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

/// What a shard knows of its orders created since a time (the console's
/// day figures).
#[derive(Message)]
#[rtype(result = "Vec<super::figures::Snapshot>")]
pub struct SnapshotsSince {
    /// The start of the day asked about.
    pub since: time::OffsetDateTime,
    /// Only the orders of this campus (None: every campus).
    pub campus: Option<CampusOf>,
}

/// A courier's orders whose money is not settled yet: assigned, picked
/// up, delivered and not yet confirmed, or disputed.
#[derive(Message)]
#[rtype(result = "Vec<Order>")]
pub struct CourierUnsettled {
    /// The courier.
    pub courier: OpenId,
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
