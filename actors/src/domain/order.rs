//! The order: what is asked, its status machine, the record.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::*;

/// What kind of errand an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// Pick up a parcel at an express station.
    Express,
    /// Bring takeout from the gate or a canteen.
    Takeout,
}

impl OrderKind {
    /// Parses `express` or `takeout`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "express" => Ok(Self::Express),
            "takeout" => Ok(Self::Takeout),
            _ => Err(ValidationError::new("kind must be express or takeout")),
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Express => "express",
            Self::Takeout => "takeout",
        }
    }
}

/// A place plus free-text directions (locker number, dorm room).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Location {
    /// A place on the campus map.
    pub place_id: PlaceId,
    /// Directions within the place, 1–200 characters.
    pub detail: String,
}

/// A validated order request, ready for a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// Express or takeout.
    pub kind: OrderKind,
    /// Where the courier picks up.
    pub pickup: Location,
    /// Where the courier delivers.
    pub dropoff: Location,
    /// The code the station or shop asks for, ≤ 32 characters.
    pub pickup_code: String,
    /// What the customer pays for the errand.
    pub fee_fen: Fen,
    /// What the customer adds for the courier, paid with the fee.
    pub tip_fen: Tip,
    /// A note for the courier, ≤ 200 characters.
    pub note: String,
    /// When the goods can be picked up (None: at once).
    pub ready_at: Option<OffsetDateTime>,
    /// The customer's phone for the courier.
    pub contact_phone: Option<PhoneNumber>,
    /// WeChat's content check asked operators to look at the texts (or
    /// could not check them).
    pub flagged: bool,
    /// The campus both places are on.
    pub campus: CampusId,
}

/// How far in the past a `ready_at` is still taken as "now" (phone clocks drift).
pub const READY_AT_SKEW: std::time::Duration = std::time::Duration::from_secs(60);
/// How far ahead an order may be placed.
pub const READY_AT_AHEAD: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Parses a `ready_at` (RFC 3339) against `now`: up to a minute in the past
/// counts as now; further back, or more than 24 h ahead, is refused.
pub fn parse_ready_at(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, ValidationError> {
    let at = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(
        |_| ValidationError::new("ready_at must be an RFC 3339 time such as 2026-11-25T12:30:00Z"),
    )?;
    if at < now - READY_AT_SKEW {
        return Err(ValidationError::new("ready_at must not be in the past"));
    }
    if at > now + READY_AT_AHEAD {
        return Err(ValidationError::new("ready_at must be within 24 hours"));
    }
    let at = at.to_offset(time::UtcOffset::UTC);
    Ok(at
        .replace_microsecond(at.microsecond())
        .unwrap_or(at)
        .max(now))
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created, waiting for WeChat Pay.
    AwaitingPayment,
    /// Paid, waiting for a courier.
    Paid,
    /// A courier has it.
    Assigned,
    /// The courier has the goods.
    PickedUp,
    /// Handed over, waiting for the customer's confirmation.
    Delivered,
    /// The customer says something went wrong: auto-confirm waits, the
    /// courier's earning is held until an operator resolves it.
    Disputed,
    /// Done.
    Completed,
    /// Cancelled before payment.
    Cancelled,
    /// Money on its way back.
    Refunding,
    /// Money returned.
    Refunded,
    /// WeChat Pay answered the refund as closed or abnormal: an operator
    /// retries it (same refund number, as WeChat Pay asks) or records that
    /// it was settled by hand.
    RefundFailed,
}

/// Every status, in life order (for metrics and parsing).
pub const ALL_STATUSES: [Status; 11] = [
    Status::AwaitingPayment,
    Status::Paid,
    Status::Assigned,
    Status::PickedUp,
    Status::Delivered,
    Status::Disputed,
    Status::Completed,
    Status::Cancelled,
    Status::Refunding,
    Status::Refunded,
    Status::RefundFailed,
];

/// Something that happens to an order; the status machine decides if it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// WeChat Pay confirmed the payment.
    PaymentConfirmed,
    /// The customer (or the payment timeout) cancels.
    Cancel,
    /// A courier takes the order.
    Assign,
    /// The courier's task is taken back (offline too long).
    Unassign,
    /// The courier picked the goods up.
    PickUp,
    /// The courier handed them over.
    Deliver,
    /// The customer (or the auto-confirm timer) confirms receipt.
    Confirm,
    /// WeChat Pay confirmed the refund.
    RefundConfirmed,
    /// An operator refunds a paid order, whatever became of it (or
    /// retries a refund that failed).
    OperatorRefund,
    /// WeChat Pay answered the refund as closed or abnormal.
    RefundFailed,
    /// An operator records that a failed refund was settled by hand.
    RefundSettled,
    /// The customer disputes a delivered order.
    Dispute,
    /// An operator resolves a dispute with nothing back: the order completes.
    Resolve,
    /// An operator resolves a dispute with money back (part or all).
    ResolveRefund,
    /// WeChat Pay confirmed a partial refund: the rest is settled.
    PartRefundConfirmed,
    /// An operator records that a failed partial refund was paid by hand:
    /// the rest is settled.
    PartRefundSettled,
}

impl Event {
    /// The wire name (the order history in the admin API).
    pub fn as_str(self) -> &'static str {
        match self {
            Event::PaymentConfirmed => "payment_confirmed",
            Event::Cancel => "cancel",
            Event::Assign => "assign",
            Event::Unassign => "unassign",
            Event::PickUp => "pick_up",
            Event::Deliver => "deliver",
            Event::Confirm => "confirm",
            Event::RefundConfirmed => "refund_confirmed",
            Event::OperatorRefund => "operator_refund",
            Event::RefundFailed => "refund_failed",
            Event::RefundSettled => "refund_settled",
            Event::Dispute => "dispute",
            Event::Resolve => "resolve",
            Event::ResolveRefund => "resolve_refund",
            Event::PartRefundConfirmed => "part_refund_confirmed",
            Event::PartRefundSettled => "part_refund_settled",
        }
    }
}

/// Why a dispute cannot be resolved as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The refund is out of range.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The order is not disputed.
    #[error(transparent)]
    Transition(#[from] TransitionError),
}

/// An event the current status does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order that is {from} cannot {event}")]
pub struct TransitionError {
    /// The status the order was in.
    pub from: Status,
    /// What was attempted.
    pub event: EventName,
}

/// The name of an event, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventName(pub Event);

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Event::PaymentConfirmed => "be paid",
            Event::Cancel => "be cancelled",
            Event::Assign => "be assigned",
            Event::Unassign => "be unassigned",
            Event::PickUp => "be picked up",
            Event::Deliver => "be delivered",
            Event::Confirm => "be confirmed",
            Event::RefundConfirmed => "be refunded",
            Event::OperatorRefund => "be refunded by an operator",
            Event::RefundFailed => "fail to be refunded",
            Event::RefundSettled => "be settled by hand",
            Event::Dispute => "be disputed",
            Event::Resolve | Event::ResolveRefund => "be resolved",
            Event::PartRefundConfirmed => "be partly refunded",
            Event::PartRefundSettled => "be partly settled by hand",
        })
    }
}

impl Status {
    /// The one place transitions are decided.
    pub fn apply(self, event: Event) -> Result<Status, TransitionError> {
        use Event as E;
        use Status as S;
        let next = match (self, event) {
            (S::AwaitingPayment, E::PaymentConfirmed) => S::Paid,
            (S::AwaitingPayment, E::Cancel) => S::Cancelled,
            // A paid order is never just dropped: cancelling it starts a refund,
            // and so does a payment that arrives after the order was cancelled.
            (S::Paid, E::Cancel) => S::Refunding,
            // Until pickup the customer may change their mind; the courier
            // loses the task (the goods are still where they were).
            (S::Assigned, E::Cancel) => S::Refunding,
            (S::Cancelled, E::PaymentConfirmed) => S::Refunding,
            (S::Paid, E::Assign) => S::Assigned,
            (S::Assigned, E::Unassign) => S::Paid,
            (S::Assigned, E::PickUp) => S::PickedUp,
            (S::PickedUp, E::Deliver) => S::Delivered,
            (S::Delivered, E::Confirm) => S::Completed,
            (S::Refunding, E::RefundConfirmed) => S::Refunded,
            // An operator may give the money back at any point after payment
            // (a complaint after delivery included) until it is settled: a
            // completed order's money is its courier's and the platform's.
            (S::Paid | S::Assigned | S::PickedUp | S::Delivered, E::OperatorRefund) => S::Refunding,
            (S::Refunding, E::RefundFailed) => S::RefundFailed,
            // The retry, with the same refund number.
            (S::RefundFailed, E::OperatorRefund) => S::Refunding,
            (S::RefundFailed, E::RefundSettled) => S::Refunded,
            // A dispute holds the money until an operator decides; a
            // refund of part of it completes the order with the rest.
            (S::Delivered, E::Dispute) => S::Disputed,
            (S::Disputed, E::Resolve) => S::Completed,
            (S::Disputed, E::ResolveRefund) => S::Refunding,
            (S::Refunding, E::PartRefundConfirmed) => S::Completed,
            (S::RefundFailed, E::PartRefundSettled) => S::Completed,
            (from, event) => {
                return Err(TransitionError {
                    from,
                    event: EventName(event),
                })
            }
        };
        Ok(next)
    }

    /// True when nothing more will happen on its own, so the order leaves memory.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Completed | Status::Cancelled | Status::Refunded
        )
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::AwaitingPayment => "awaiting_payment",
            Status::Paid => "paid",
            Status::Assigned => "assigned",
            Status::PickedUp => "picked_up",
            Status::Delivered => "delivered",
            Status::Disputed => "disputed",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::Refunding => "refunding",
            Status::Refunded => "refunded",
            Status::RefundFailed => "refund_failed",
        }
    }

    /// Parses a wire name (the `status` filter of the list endpoint).
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        ALL_STATUSES
            .iter()
            .copied()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| ValidationError::new("status is not a known order status"))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The order record, as stored and as served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Order {
    /// Its id (also WeChat Pay's `out_trade_no`).
    pub id: OrderId,
    /// The customer's openid.
    pub customer: OpenId,
    /// Express or takeout.
    pub kind: OrderKind,
    /// Where to pick up.
    pub pickup: Location,
    /// Where to deliver.
    pub dropoff: Location,
    /// Shown only to the customer and the assigned courier.
    pub pickup_code: String,
    /// The fee in fen.
    pub fee_fen: Fen,
    /// The tip in fen (0 when none): paid with the fee, the courier's whole.
    pub tip_fen: Tip,
    /// The customer's note.
    pub note: String,
    /// When the goods can be picked up (the creation time when not given).
    #[serde(with = "time::serde::rfc3339")]
    pub ready_at: OffsetDateTime,
    /// Private so that only [`Order::apply`] changes it.
    status: Status,
    /// The assigned courier, if any.
    pub courier: Option<OpenId>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Every change after creation, oldest first, with who caused it
    /// (served by the admin API only).
    #[serde(skip)]
    history: Vec<Change>,
    /// What later features added; served only through views that know
    /// who is looking (contact details are not everyone's).
    #[serde(skip)]
    pub extras: OrderExtras,
}

/// The fields an order gained after its record settled: private contact,
/// proof, disputes and the timers' marks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderExtras {
    /// The customer's phone, for the assigned courier only.
    pub contact_phone: Option<PhoneNumber>,
    /// The courier's photo at hand-over.
    pub delivery_photo: Option<UploadId>,
    /// The customer's dispute, once opened.
    pub dispute: Option<Dispute>,
    /// The customer was told that nobody has taken the order yet.
    pub untaken_noticed: bool,
    /// When WeChat's shipping-info service took the delivery.
    pub shipping_reported_at: Option<OffsetDateTime>,
    /// Texts WeChat's content check asked operators to look at (or could
    /// not check).
    pub flagged: bool,
    /// The campus it is on; None for an order written before campuses,
    /// which belongs to the default (first) campus.
    pub campus: Option<CampusId>,
}

impl OrderExtras {
    /// True when there is nothing to store beyond the older record.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Every field of an order, for the storage layer to rebuild one it wrote
/// (a stored status was reached through [`Order::apply`] when written).
#[derive(Debug, Clone)]
pub struct OrderParts {
    /// See [`Order::id`].
    pub id: OrderId,
    /// See [`Order::customer`].
    pub customer: OpenId,
    /// See [`Order::kind`].
    pub kind: OrderKind,
    /// See [`Order::pickup`].
    pub pickup: Location,
    /// See [`Order::dropoff`].
    pub dropoff: Location,
    /// See [`Order::pickup_code`].
    pub pickup_code: String,
    /// See [`Order::fee_fen`].
    pub fee_fen: Fen,
    /// See [`Order::tip_fen`].
    pub tip_fen: Tip,
    /// See [`Order::note`].
    pub note: String,
    /// See [`Order::ready_at`].
    pub ready_at: OffsetDateTime,
    /// The status it had.
    pub status: Status,
    /// See [`Order::courier`].
    pub courier: Option<OpenId>,
    /// See [`Order::created_at`].
    pub created_at: OffsetDateTime,
    /// See [`Order::updated_at`].
    pub updated_at: OffsetDateTime,
    /// See [`Order::history`].
    pub history: Vec<Change>,
    /// See [`Order::extras`].
    pub extras: OrderExtras,
}

impl Order {
    /// An order read back from storage.
    pub fn restore(p: OrderParts) -> Self {
        Self {
            id: p.id,
            customer: p.customer,
            kind: p.kind,
            pickup: p.pickup,
            dropoff: p.dropoff,
            pickup_code: p.pickup_code,
            fee_fen: p.fee_fen,
            tip_fen: p.tip_fen,
            note: p.note,
            ready_at: p.ready_at,
            status: p.status,
            courier: p.courier,
            created_at: p.created_at,
            updated_at: p.updated_at,
            history: p.history,
            extras: p.extras,
        }
    }

    /// A new order awaiting payment.
    pub fn new(id: OrderId, customer: OpenId, new: NewOrder, now: OffsetDateTime) -> Self {
        Self {
            id,
            customer,
            kind: new.kind,
            pickup: new.pickup,
            dropoff: new.dropoff,
            pickup_code: new.pickup_code,
            fee_fen: new.fee_fen,
            tip_fen: new.tip_fen,
            note: new.note,
            ready_at: new.ready_at.unwrap_or(now).max(now),
            status: Status::AwaitingPayment,
            courier: None,
            created_at: now,
            updated_at: now,
            history: Vec::new(),
            extras: OrderExtras {
                contact_phone: new.contact_phone,
                flagged: new.flagged,
                campus: Some(new.campus),
                ..OrderExtras::default()
            },
        }
    }

    /// When WeChat Pay confirmed the payment (from the history; the last
    /// change for an order stored before histories).
    pub fn paid_at(&self) -> Option<OffsetDateTime> {
        self.history
            .iter()
            .find(|c| c.event == Some(Event::PaymentConfirmed))
            .map(|c| c.at)
    }

    /// What goes back to the customer when the order is refunded: all of
    /// it, unless a dispute was resolved with a part.
    pub fn refund_fen(&self) -> u32 {
        self.resolution()
            .map_or(self.total_fen(), |r| r.refund_fen.min(self.total_fen()))
    }

    /// True when a refund gives back only part of the money (the rest is
    /// settled with the courier and the platform).
    pub fn refund_is_partial(&self) -> bool {
        self.refund_fen() < self.total_fen()
    }

    /// How the order's dispute was settled, if it was.
    pub fn resolution(&self) -> Option<&Resolution> {
        self.extras.dispute.as_ref()?.resolution.as_ref()
    }

    /// The customer opens a dispute (through the status machine).
    pub fn open_dispute(
        &mut self,
        dispute: NewDispute,
        now: OffsetDateTime,
    ) -> Result<Status, TransitionError> {
        let status = self.apply(Event::Dispute, ChangedBy::Customer, now)?;
        self.explain_last(dispute.reason.as_str().to_owned());
        self.extras.flagged |= dispute.flagged;
        self.extras.dispute = Some(Dispute::open(dispute, now));
        Ok(status)
    }

    /// An operator settles the dispute with `refund_fen` back to the
    /// customer (checked against the total).
    pub fn resolve(
        &mut self,
        refund_fen: u32,
        note: String,
        by: Option<OperatorName>,
        now: OffsetDateTime,
    ) -> Result<Status, ResolveError> {
        // Not in dispute (resolved already) is a conflict whatever the amount.
        self.status.apply(Event::Resolve)?;
        let event = resolution_event(refund_fen, self.total_fen())?;
        let status = self.apply(event, ChangedBy::Operator(by.clone()), now)?;
        self.explain_last(format!("refund {refund_fen} fen: {note}"));
        if let Some(dispute) = self.extras.dispute.as_mut() {
            dispute.resolution = Some(Resolution {
                refund_fen,
                note,
                by,
                at: now,
            });
        }
        Ok(status)
    }

    /// What WeChat Pay charges for it (`total_fee`): fee plus tip.
    pub fn total_fen(&self) -> u32 {
        self.fee_fen.get() + self.tip_fen.get()
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The changes after creation, oldest first.
    pub fn history(&self) -> &[Change] {
        &self.history
    }

    /// Applies an event through the status machine, stamping `updated_at`
    /// and recording who caused it.
    pub fn apply(
        &mut self,
        event: Event,
        by: ChangedBy,
        now: OffsetDateTime,
    ) -> Result<Status, TransitionError> {
        let next = self.status.apply(event)?;
        self.status = next;
        self.updated_at = now;
        if matches!(event, Event::Cancel | Event::OperatorRefund) && !self.refund_is_partial() {
            // A cancelled or refunded task is nobody's any more (a
            // partial refund's courier still earns the rest).
            self.courier = None;
        }
        self.record(Change {
            at: now,
            event: Some(event),
            to: next,
            by,
            note: String::new(),
        });
        Ok(next)
    }

    /// Hands the order to `courier` (through the status machine).
    pub fn assign(
        &mut self,
        courier: OpenId,
        by: ChangedBy,
        now: OffsetDateTime,
    ) -> Result<Status, TransitionError> {
        let status = self.apply(Event::Assign, by, now)?;
        self.courier = Some(courier);
        Ok(status)
    }

    /// Takes the order back from its courier.
    pub fn unassign(
        &mut self,
        by: ChangedBy,
        now: OffsetDateTime,
    ) -> Result<Status, TransitionError> {
        let status = self.apply(Event::Unassign, by, now)?;
        self.courier = None;
        Ok(status)
    }

    /// Records something said about the order without changing it
    /// (an operator's action on its courier, the reason for a refund).
    pub fn note(&mut self, by: ChangedBy, note: String, now: OffsetDateTime) {
        let to = self.status;
        self.record(Change {
            at: now,
            event: None,
            to,
            by,
            note,
        });
    }

    /// Puts a note on the last change (the operator's reason for it).
    pub fn explain_last(&mut self, note: String) {
        if let Some(last) = self.history.last_mut() {
            last.note = note;
        }
    }

    fn record(&mut self, change: Change) {
        if change.event.is_none() {
            let notes = self.history.iter().filter(|c| c.event.is_none()).count();
            if notes >= MAX_NOTES {
                if let Some(oldest) = self.history.iter().position(|c| c.event.is_none()) {
                    self.history.remove(oldest);
                }
            }
        }
        self.history.push(change);
    }

    /// May `who` see this order at all?
    pub fn visible_to(&self, who: &OpenId) -> bool {
        &self.customer == who || self.courier.as_ref() == Some(who)
    }
}
