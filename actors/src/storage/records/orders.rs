//! Orders as stored: every version ever written, its histories, disputes and extras.

use super::*;

/// Kinds as stored (the variant index is the disk value).
#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum KindRecord {
    Express,
    Takeout,
}

/// Statuses as stored (the variant index is the disk value).
#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum StatusRecord {
    AwaitingPayment,
    Paid,
    Assigned,
    PickedUp,
    Delivered,
    Completed,
    Cancelled,
    Refunding,
    Refunded,
    // Appended: earlier records keep their variant numbers.
    RefundFailed,
    Disputed,
}

/// A place and directions as stored (`S`: borrowed text to write, owned
/// to read; both encode the same).
#[derive(Serialize, Deserialize)]
struct LocationRecord<S = String> {
    place_id: S,
    detail: S,
}

/// Orders since `ready_at` (tag `ORDER_V2`); written borrowed (no copy of
/// the order's text on the create path), read owned.
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct OrderV2<S = String> {
    id: S,
    customer: S,
    kind: KindRecord,
    pickup: LocationRecord<S>,
    dropoff: LocationRecord<S>,
    pickup_code: S,
    fee_fen: u32,
    note: S,
    #[serde(with = "time::serde::rfc3339")]
    ready_at: OffsetDateTime,
    status: StatusRecord,
    courier: Option<S>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

/// Orders with a history (tag `ORDER_V3`): the v2 fields, then the changes.
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct OrderV3<S = String> {
    order: OrderV2<S>,
    history: Vec<ChangeRecord<S>>,
}

/// Orders with a tip (tag `ORDER_V4`): the v3 record, then the tip.
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct OrderV4<S = String> {
    order: OrderV3<S>,
    tip_fen: u32,
}

/// Orders with contact, proof, a dispute or timer marks (tag
/// `ORDER_V5`): the v4 record, then those.
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct OrderV5<S = String> {
    order: OrderV4<S>,
    extras: ExtrasRecord<S>,
}

/// Orders on a campus (tag `ORDER_V6`): the v5 record, then the campus.
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct OrderV6<S = String> {
    order: OrderV5<S>,
    campus: Option<S>,
}

impl<'a> From<&'a Order> for OrderV6<&'a str> {
    fn from(o: &'a Order) -> Self {
        Self {
            order: o.into(),
            campus: o.extras.campus.as_ref().map(|c| c.as_str()),
        }
    }
}

impl OrderV6 {
    /// The domain order this record holds.
    pub(in crate::storage) fn domain(self) -> Result<Order, Unreadable> {
        let mut order = self.order.domain()?;
        order.extras.campus = self
            .campus
            .map(|c| CampusId::parse(&c).map_err(|_| Unreadable))
            .transpose()?;
        Ok(order)
    }
}

/// [`crate::domain::OrderExtras`] as stored.
#[derive(Serialize, Deserialize)]
struct ExtrasRecord<S = String> {
    contact_phone: Option<S>,
    delivery_photo: Option<S>,
    dispute: Option<DisputeRecord<S>>,
    untaken_noticed: bool,
    shipping_reported_unix_ms: Option<i64>,
    flagged: bool,
}

/// A dispute as stored.
#[derive(Serialize, Deserialize)]
struct DisputeRecord<S = String> {
    reason: ReasonRecord,
    text: S,
    photos: Vec<S>,
    opened_unix_ms: i64,
    resolution: Option<ResolutionRecord<S>>,
}

/// Dispute reasons as stored (the variant index is the disk value).
#[derive(Serialize, Deserialize, Clone, Copy)]
enum ReasonRecord {
    NotDelivered,
    Damaged,
    WrongItem,
    Other,
}

/// A dispute's resolution as stored.
#[derive(Serialize, Deserialize)]
struct ResolutionRecord<S = String> {
    refund_fen: u32,
    note: S,
    by: Option<S>,
    at_unix_ms: i64,
}

/// One change of an order's history as stored.
#[derive(Serialize, Deserialize)]
struct ChangeRecord<S = String> {
    at_unix_ms: i64,
    event: Option<EventRecord>,
    to: StatusRecord,
    by: ByRecord<S>,
    note: S,
}

/// Events as stored (the variant index is the disk value).
#[derive(Serialize, Deserialize, Clone, Copy)]
enum EventRecord {
    PaymentConfirmed,
    Cancel,
    Assign,
    Unassign,
    PickUp,
    Deliver,
    Confirm,
    RefundConfirmed,
    OperatorRefund,
    // Appended: earlier records keep their variant numbers.
    RefundFailed,
    RefundSettled,
    Dispute,
    Resolve,
    ResolveRefund,
    PartRefundConfirmed,
    PartRefundSettled,
}

/// Who caused a change, as stored.
#[derive(Serialize, Deserialize)]
enum ByRecord<S = String> {
    Customer,
    Courier(S),
    WeChatPay,
    Dispatcher,
    Timer,
    Operator,
    // Appended: earlier records keep their variant numbers.
    NamedOperator(S),
}

/// Orders from before `ready_at` (tag `RECORD_V1`); they read as ready
/// when they were created.
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct OrderV1 {
    id: String,
    customer: String,
    kind: KindRecord,
    pickup: LocationRecord,
    dropoff: LocationRecord,
    pickup_code: String,
    fee_fen: u32,
    note: String,
    status: StatusRecord,
    courier: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

fn kind(k: OrderKind) -> KindRecord {
    match k {
        OrderKind::Express => KindRecord::Express,
        OrderKind::Takeout => KindRecord::Takeout,
    }
}

fn status(s: Status) -> StatusRecord {
    match s {
        Status::AwaitingPayment => StatusRecord::AwaitingPayment,
        Status::Paid => StatusRecord::Paid,
        Status::Assigned => StatusRecord::Assigned,
        Status::PickedUp => StatusRecord::PickedUp,
        Status::Delivered => StatusRecord::Delivered,
        Status::Completed => StatusRecord::Completed,
        Status::Cancelled => StatusRecord::Cancelled,
        Status::Refunding => StatusRecord::Refunding,
        Status::Refunded => StatusRecord::Refunded,
        Status::RefundFailed => StatusRecord::RefundFailed,
        Status::Disputed => StatusRecord::Disputed,
    }
}

impl KindRecord {
    fn domain(self) -> OrderKind {
        match self {
            KindRecord::Express => OrderKind::Express,
            KindRecord::Takeout => OrderKind::Takeout,
        }
    }
}

impl StatusRecord {
    fn domain(self) -> Status {
        match self {
            StatusRecord::AwaitingPayment => Status::AwaitingPayment,
            StatusRecord::Paid => Status::Paid,
            StatusRecord::Assigned => Status::Assigned,
            StatusRecord::PickedUp => Status::PickedUp,
            StatusRecord::Delivered => Status::Delivered,
            StatusRecord::Completed => Status::Completed,
            StatusRecord::Cancelled => Status::Cancelled,
            StatusRecord::Refunding => Status::Refunding,
            StatusRecord::Refunded => Status::Refunded,
            StatusRecord::RefundFailed => Status::RefundFailed,
            StatusRecord::Disputed => Status::Disputed,
        }
    }
}

impl<'a> From<&'a Location> for LocationRecord<&'a str> {
    fn from(l: &'a Location) -> Self {
        Self {
            place_id: l.place_id.as_str(),
            detail: &l.detail,
        }
    }
}

impl LocationRecord {
    fn domain(self) -> Result<Location, Unreadable> {
        Ok(Location {
            place_id: PlaceId::try_from(self.place_id).map_err(|_| Unreadable)?,
            detail: self.detail,
        })
    }
}

impl<'a> From<&'a Order> for OrderV2<&'a str> {
    fn from(o: &'a Order) -> Self {
        Self {
            id: o.id.as_str(),
            customer: o.customer.as_str(),
            kind: kind(o.kind),
            pickup: (&o.pickup).into(),
            dropoff: (&o.dropoff).into(),
            pickup_code: &o.pickup_code,
            fee_fen: o.fee_fen.get(),
            note: &o.note,
            ready_at: o.ready_at,
            status: status(o.status()),
            courier: o.courier.as_ref().map(|c| c.as_str()),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

impl OrderV2 {
    /// The domain order this record holds, with `history`, `tip_fen` and
    /// the extras.
    fn domain_with(
        self,
        history: Vec<Change>,
        tip_fen: u32,
        extras: OrderExtras,
    ) -> Result<Order, Unreadable> {
        Ok(Order::restore(OrderParts {
            id: OrderId::parse(&self.id).map_err(|_| Unreadable)?,
            customer: open_id(&self.customer)?,
            kind: self.kind.domain(),
            pickup: self.pickup.domain()?,
            dropoff: self.dropoff.domain()?,
            pickup_code: self.pickup_code,
            fee_fen: Fen::try_from(self.fee_fen).map_err(|_| Unreadable)?,
            tip_fen: Tip::try_from(tip_fen).map_err(|_| Unreadable)?,
            note: self.note,
            ready_at: self.ready_at,
            status: self.status.domain(),
            courier: self.courier.as_deref().map(open_id).transpose()?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            history,
            extras,
        }))
    }
}

impl From<OrderV2> for OrderV3 {
    fn from(order: OrderV2) -> Self {
        Self {
            order,
            history: Vec::new(),
        }
    }
}

impl<'a> From<&'a Order> for OrderV3<&'a str> {
    fn from(o: &'a Order) -> Self {
        Self {
            order: o.into(),
            history: o.history().iter().map(ChangeRecord::from).collect(),
        }
    }
}

impl From<OrderV3> for OrderV4 {
    fn from(order: OrderV3) -> Self {
        Self { order, tip_fen: 0 }
    }
}

impl<'a> From<&'a Order> for OrderV4<&'a str> {
    fn from(o: &'a Order) -> Self {
        Self {
            order: o.into(),
            tip_fen: o.tip_fen.get(),
        }
    }
}

impl OrderV4 {
    /// The domain order this record holds, with its history.
    fn domain_with(self, extras: OrderExtras) -> Result<Order, Unreadable> {
        let history = self
            .order
            .history
            .into_iter()
            .map(ChangeRecord::domain)
            .collect::<Result<Vec<_>, _>>()?;
        self.order.order.domain_with(history, self.tip_fen, extras)
    }
}

impl From<OrderV4> for OrderV5 {
    fn from(order: OrderV4) -> Self {
        Self {
            order,
            extras: ExtrasRecord {
                contact_phone: None,
                delivery_photo: None,
                dispute: None,
                untaken_noticed: false,
                shipping_reported_unix_ms: None,
                flagged: false,
            },
        }
    }
}

impl<'a> From<&'a Order> for OrderV5<&'a str> {
    fn from(o: &'a Order) -> Self {
        let x = &o.extras;
        Self {
            order: o.into(),
            extras: ExtrasRecord {
                contact_phone: x.contact_phone.as_ref().map(|p| p.as_str()),
                delivery_photo: x.delivery_photo.as_ref().map(|p| p.as_str()),
                dispute: x.dispute.as_ref().map(DisputeRecord::from),
                untaken_noticed: x.untaken_noticed,
                shipping_reported_unix_ms: x.shipping_reported_at.map(crate::domain::unix_ms),
                flagged: x.flagged,
            },
        }
    }
}

impl OrderV5 {
    /// The domain order this record holds.
    pub(in crate::storage) fn domain(self) -> Result<Order, Unreadable> {
        let extras = self.extras.domain()?;
        self.order.domain_with(extras)
    }
}

impl ExtrasRecord {
    fn domain(self) -> Result<OrderExtras, Unreadable> {
        let upload = |s: String| UploadId::parse(&s).map_err(|_| Unreadable);
        Ok(OrderExtras {
            contact_phone: self
                .contact_phone
                .map(|p| PhoneNumber::parse(&p).map_err(|_| Unreadable))
                .transpose()?,
            delivery_photo: self.delivery_photo.map(upload).transpose()?,
            dispute: self.dispute.map(DisputeRecord::domain).transpose()?,
            untaken_noticed: self.untaken_noticed,
            shipping_reported_at: self.shipping_reported_unix_ms.map(time_of_ms).transpose()?,
            flagged: self.flagged,
            campus: None,
        })
    }
}

impl<'a> From<&'a Dispute> for DisputeRecord<&'a str> {
    fn from(d: &'a Dispute) -> Self {
        Self {
            reason: match d.reason {
                DisputeReason::NotDelivered => ReasonRecord::NotDelivered,
                DisputeReason::Damaged => ReasonRecord::Damaged,
                DisputeReason::WrongItem => ReasonRecord::WrongItem,
                DisputeReason::Other => ReasonRecord::Other,
            },
            text: &d.text,
            photos: d.photos.iter().map(|p| p.as_str()).collect(),
            opened_unix_ms: crate::domain::unix_ms(d.opened_at),
            resolution: d.resolution.as_ref().map(|r| ResolutionRecord {
                refund_fen: r.refund_fen,
                note: r.note.as_str(),
                by: r.by.as_ref().map(|b| b.as_str()),
                at_unix_ms: crate::domain::unix_ms(r.at),
            }),
        }
    }
}

impl DisputeRecord {
    fn domain(self) -> Result<Dispute, Unreadable> {
        let resolution = match self.resolution {
            Some(r) => Some(Resolution {
                refund_fen: r.refund_fen,
                note: r.note,
                by: r
                    .by
                    .map(|b| OperatorName::parse(&b).map_err(|_| Unreadable))
                    .transpose()?,
                at: time_of_ms(r.at_unix_ms)?,
            }),
            None => None,
        };
        Ok(Dispute {
            reason: match self.reason {
                ReasonRecord::NotDelivered => DisputeReason::NotDelivered,
                ReasonRecord::Damaged => DisputeReason::Damaged,
                ReasonRecord::WrongItem => DisputeReason::WrongItem,
                ReasonRecord::Other => DisputeReason::Other,
            },
            text: self.text,
            photos: self
                .photos
                .iter()
                .map(|p| UploadId::parse(p).map_err(|_| Unreadable))
                .collect::<Result<_, _>>()?,
            opened_at: time_of_ms(self.opened_unix_ms)?,
            resolution,
        })
    }
}

impl<'a> From<&'a Change> for ChangeRecord<&'a str> {
    fn from(c: &'a Change) -> Self {
        Self {
            at_unix_ms: crate::domain::unix_ms(c.at),
            event: c.event.map(event),
            to: status(c.to),
            by: match &c.by {
                ChangedBy::Customer => ByRecord::Customer,
                ChangedBy::Courier(id) => ByRecord::Courier(id.as_str()),
                ChangedBy::WeChatPay => ByRecord::WeChatPay,
                ChangedBy::Dispatcher => ByRecord::Dispatcher,
                ChangedBy::Timer => ByRecord::Timer,
                ChangedBy::Operator(None) => ByRecord::Operator,
                ChangedBy::Operator(Some(name)) => ByRecord::NamedOperator(name.as_str()),
            },
            note: &c.note,
        }
    }
}

impl ChangeRecord {
    fn domain(self) -> Result<Change, Unreadable> {
        let at = time_of_ms(self.at_unix_ms)?;
        Ok(Change {
            at,
            event: self.event.map(EventRecord::domain),
            to: self.to.domain(),
            by: match self.by {
                ByRecord::Customer => ChangedBy::Customer,
                ByRecord::Courier(id) => ChangedBy::Courier(open_id(&id)?),
                ByRecord::WeChatPay => ChangedBy::WeChatPay,
                ByRecord::Dispatcher => ChangedBy::Dispatcher,
                ByRecord::Timer => ChangedBy::Timer,
                ByRecord::Operator => ChangedBy::Operator(None),
                ByRecord::NamedOperator(name) => {
                    ChangedBy::Operator(Some(OperatorName::parse(&name).map_err(|_| Unreadable)?))
                }
            },
            note: self.note,
        })
    }
}

fn event(e: Event) -> EventRecord {
    match e {
        Event::PaymentConfirmed => EventRecord::PaymentConfirmed,
        Event::Cancel => EventRecord::Cancel,
        Event::Assign => EventRecord::Assign,
        Event::Unassign => EventRecord::Unassign,
        Event::PickUp => EventRecord::PickUp,
        Event::Deliver => EventRecord::Deliver,
        Event::Confirm => EventRecord::Confirm,
        Event::RefundConfirmed => EventRecord::RefundConfirmed,
        Event::OperatorRefund => EventRecord::OperatorRefund,
        Event::RefundFailed => EventRecord::RefundFailed,
        Event::RefundSettled => EventRecord::RefundSettled,
        Event::Dispute => EventRecord::Dispute,
        Event::Resolve => EventRecord::Resolve,
        Event::ResolveRefund => EventRecord::ResolveRefund,
        Event::PartRefundConfirmed => EventRecord::PartRefundConfirmed,
        Event::PartRefundSettled => EventRecord::PartRefundSettled,
    }
}

impl EventRecord {
    fn domain(self) -> Event {
        match self {
            EventRecord::PaymentConfirmed => Event::PaymentConfirmed,
            EventRecord::Cancel => Event::Cancel,
            EventRecord::Assign => Event::Assign,
            EventRecord::Unassign => Event::Unassign,
            EventRecord::PickUp => Event::PickUp,
            EventRecord::Deliver => Event::Deliver,
            EventRecord::Confirm => Event::Confirm,
            EventRecord::RefundConfirmed => Event::RefundConfirmed,
            EventRecord::OperatorRefund => Event::OperatorRefund,
            EventRecord::RefundFailed => Event::RefundFailed,
            EventRecord::RefundSettled => Event::RefundSettled,
            EventRecord::Dispute => Event::Dispute,
            EventRecord::Resolve => Event::Resolve,
            EventRecord::ResolveRefund => Event::ResolveRefund,
            EventRecord::PartRefundConfirmed => Event::PartRefundConfirmed,
            EventRecord::PartRefundSettled => Event::PartRefundSettled,
        }
    }
}

impl OrderV1 {
    /// The same order as a v2 record, ready when it was created.
    pub(in crate::storage) fn upgrade(self) -> OrderV2 {
        OrderV2 {
            id: self.id,
            customer: self.customer,
            kind: self.kind,
            pickup: self.pickup,
            dropoff: self.dropoff,
            pickup_code: self.pickup_code,
            fee_fen: self.fee_fen,
            note: self.note,
            ready_at: self.created_at,
            status: self.status,
            courier: self.courier,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}
