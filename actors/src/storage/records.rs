//! Persisted records (orders, payment sessions, sessions, outbox entries,
//! pooled ids, the access token, courier profiles): the storage layer's own
//! versioned types, so a change to the domain or API shape never changes
//! what is on disk, and every version ever written keeps reading. Field order and
//! types below *are* the disk format (bincode is positional); a new layout
//! is a new version with its own tag byte.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{
    Block, CampusId, Change, ChangedBy, CourierProfile, Dispute, DisputeReason, Event, Fen,
    ImageType, Location, MessageKind, OpenId, OperatorName, OperatorRecord, Order, OrderExtras,
    OrderId, OrderKind, OrderParts, OutboxEntry, PhoneNumber, PlaceId, PooledId, Resolution,
    Review, Role, Session, Status, StoredToken, Tip, Upload, UploadId, Via,
};
use crate::ledger::{
    Account, Entry, Leg, Mismatch, MismatchKind, MoneyEvent, Posted, Posting, PostingKind,
    Reconciliation, Subject, Withdrawal, WithdrawalId, WithdrawalStatus,
};
use crate::payments::PaymentRecord;
use crate::wechat::PayParams;

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
pub(super) struct OrderV2<S = String> {
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
pub(super) struct OrderV3<S = String> {
    order: OrderV2<S>,
    history: Vec<ChangeRecord<S>>,
}

/// Orders with a tip (tag `ORDER_V4`): the v3 record, then the tip.
#[derive(Serialize, Deserialize)]
pub(super) struct OrderV4<S = String> {
    order: OrderV3<S>,
    tip_fen: u32,
}

/// Orders with contact, proof, a dispute or timer marks (tag
/// `ORDER_V5`): the v4 record, then those.
#[derive(Serialize, Deserialize)]
pub(super) struct OrderV5<S = String> {
    order: OrderV4<S>,
    extras: ExtrasRecord<S>,
}

/// Orders on a campus (tag `ORDER_V6`): the v5 record, then the campus.
#[derive(Serialize, Deserialize)]
pub(super) struct OrderV6<S = String> {
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
    pub(super) fn domain(self) -> Result<Order, Unreadable> {
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
pub(super) struct OrderV1 {
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

/// A stored value that no longer parses as the domain value.
#[derive(Debug)]
pub(super) struct Unreadable;

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

fn open_id(s: &str) -> Result<OpenId, Unreadable> {
    OpenId::parse(s).map_err(|_| Unreadable)
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
    pub(super) fn domain(self) -> Result<Order, Unreadable> {
        let extras = self.extras.domain()?;
        self.order.domain_with(extras)
    }
}

fn time_of_ms(ms: i64) -> Result<OffsetDateTime, Unreadable> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|_| Unreadable)
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
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.at_unix_ms) * 1_000_000)
            .map_err(|_| Unreadable)?;
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
    pub(super) fn upgrade(self) -> OrderV2 {
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

/// The `wx.requestPayment` parameters handed out, kept to replay them.
#[derive(Serialize, Deserialize)]
struct PayParamsRecord {
    time_stamp: String,
    nonce_str: String,
    package: String,
    sign_type: String,
    pay_sign: String,
}

/// A payment session (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(super) struct PaymentV1 {
    order_id: String,
    prepay_id: Option<String>,
    params: Option<PayParamsRecord>,
    prepaid_at: Option<i64>,
    transaction_id: Option<String>,
    out_refund_no: Option<String>,
}

impl From<&PaymentRecord> for PaymentV1 {
    fn from(r: &PaymentRecord) -> Self {
        Self {
            order_id: r.order_id.as_str().to_owned(),
            prepay_id: r.prepay_id.clone(),
            params: r.params.as_ref().map(|p| PayParamsRecord {
                time_stamp: p.time_stamp.clone(),
                nonce_str: p.nonce_str.clone(),
                package: p.package.clone(),
                sign_type: p.sign_type.clone(),
                pay_sign: p.pay_sign.clone(),
            }),
            prepaid_at: r.prepaid_at,
            transaction_id: r.transaction_id.clone(),
            out_refund_no: r.out_refund_no.clone(),
        }
    }
}

impl PaymentV1 {
    /// The payments actor's record this holds.
    pub(super) fn domain(self) -> Result<PaymentRecord, Unreadable> {
        Ok(PaymentRecord {
            order_id: OrderId::parse(&self.order_id).map_err(|_| Unreadable)?,
            prepay_id: self.prepay_id,
            params: self.params.map(|p| PayParams {
                time_stamp: p.time_stamp,
                nonce_str: p.nonce_str,
                package: p.package,
                sign_type: p.sign_type,
                pay_sign: p.pay_sign,
            }),
            prepaid_at: self.prepaid_at,
            transaction_id: self.transaction_id,
            out_refund_no: self.out_refund_no,
        })
    }
}

/// A value the storage layer keeps as its own record type.
pub(super) trait Stored: Sized {
    /// The record as written (version tag `RECORD_V1`).
    type Record: Serialize + serde::de::DeserializeOwned;
    /// The record for this value.
    fn to_record(&self) -> Self::Record;
    /// The value a record holds.
    fn from_record(r: Self::Record) -> Result<Self, Unreadable>;
}

/// A login session (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(super) struct SessionV1 {
    openid: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

impl Stored for Session {
    type Record = SessionV1;
    fn to_record(&self) -> SessionV1 {
        SessionV1 {
            openid: self.openid.as_str().to_owned(),
            expires_at: self.expires_at,
        }
    }
    fn from_record(r: SessionV1) -> Result<Self, Unreadable> {
        Ok(Session {
            openid: open_id(&r.openid)?,
            expires_at: r.expires_at,
        })
    }
}

/// A pooled form_id or prepay_id (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(super) struct PooledIdV1 {
    value: String,
    uses_left: u8,
}

impl Stored for PooledId {
    type Record = PooledIdV1;
    fn to_record(&self) -> PooledIdV1 {
        PooledIdV1 {
            value: self.value.clone(),
            uses_left: self.uses_left,
        }
    }
    fn from_record(r: PooledIdV1) -> Result<Self, Unreadable> {
        Ok(PooledId {
            value: r.value,
            uses_left: r.uses_left,
        })
    }
}

/// What a message tells (the variant index is the disk value).
#[derive(Serialize, Deserialize, Clone, Copy)]
enum MessageKindRecord {
    Assigned,
    PickedUp,
    Delivered,
    Refunded,
    // Appended: earlier records keep their variant numbers.
    Untaken,
    ShippingInfo,
}

/// The permission a message spends.
#[derive(Serialize, Deserialize)]
enum ViaRecord {
    Subscribe,
    Template(String),
}

/// An outbox entry (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(super) struct OutboxV1 {
    id: u64,
    order_id: String,
    to: String,
    kind: MessageKindRecord,
    created_at_ms: i64,
    attempts: u32,
    next_attempt_ms: i64,
    via: Option<ViaRecord>,
}

impl Stored for OutboxEntry {
    type Record = OutboxV1;
    fn to_record(&self) -> OutboxV1 {
        OutboxV1 {
            id: self.id,
            order_id: self.order_id.as_str().to_owned(),
            to: self.to.as_str().to_owned(),
            kind: match self.kind {
                MessageKind::Assigned => MessageKindRecord::Assigned,
                MessageKind::PickedUp => MessageKindRecord::PickedUp,
                MessageKind::Delivered => MessageKindRecord::Delivered,
                MessageKind::Refunded => MessageKindRecord::Refunded,
                MessageKind::Untaken => MessageKindRecord::Untaken,
                MessageKind::ShippingInfo => MessageKindRecord::ShippingInfo,
            },
            created_at_ms: self.created_at_ms,
            attempts: self.attempts,
            next_attempt_ms: self.next_attempt_ms,
            via: self.via.as_ref().map(|v| match v {
                Via::Subscribe => ViaRecord::Subscribe,
                Via::Template(id) => ViaRecord::Template(id.clone()),
            }),
        }
    }
    fn from_record(r: OutboxV1) -> Result<Self, Unreadable> {
        Ok(OutboxEntry {
            id: r.id,
            order_id: OrderId::parse(&r.order_id).map_err(|_| Unreadable)?,
            to: open_id(&r.to)?,
            kind: match r.kind {
                MessageKindRecord::Assigned => MessageKind::Assigned,
                MessageKindRecord::PickedUp => MessageKind::PickedUp,
                MessageKindRecord::Delivered => MessageKind::Delivered,
                MessageKindRecord::Refunded => MessageKind::Refunded,
                MessageKindRecord::Untaken => MessageKind::Untaken,
                MessageKindRecord::ShippingInfo => MessageKind::ShippingInfo,
            },
            created_at_ms: r.created_at_ms,
            attempts: r.attempts,
            next_attempt_ms: r.next_attempt_ms,
            via: r.via.map(|v| match v {
                ViaRecord::Subscribe => Via::Subscribe,
                ViaRecord::Template(id) => Via::Template(id),
            }),
        })
    }
}

/// The app's access token (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(super) struct TokenV1 {
    value: String,
    expires_at: i64,
}

impl Stored for StoredToken {
    type Record = TokenV1;
    fn to_record(&self) -> TokenV1 {
        TokenV1 {
            value: self.value.clone(),
            expires_at: self.expires_at,
        }
    }
    fn from_record(r: TokenV1) -> Result<Self, Unreadable> {
        Ok(StoredToken {
            value: r.value,
            expires_at: r.expires_at,
        })
    }
}

/// A courier profile before review (tag `RECORD_V1`): such a courier was
/// taken on before couriers were reviewed, so reads as approved.
#[derive(Serialize, Deserialize)]
pub(super) struct CourierV1 {
    openid: String,
    name: String,
    phone: String,
}

impl CourierV1 {
    /// The profile it stands for: approved, applied at the epoch.
    pub(super) fn upgrade(self) -> Result<CourierProfile, Unreadable> {
        Ok(CourierProfile {
            openid: open_id(&self.openid)?,
            name: self.name,
            phone: PhoneNumber::parse(&self.phone).map_err(|_| Unreadable)?,
            student_no: None,
            card_photo: None,
            review: Review::Approved,
            reason: None,
            suspended_until: None,
            applied_at: OffsetDateTime::UNIX_EPOCH,
            name_flagged: false,
            campus: None,
        })
    }
}

/// A courier profile with its review (tag `COURIER_V2`).
#[derive(Serialize, Deserialize)]
pub(super) struct CourierV2 {
    openid: String,
    name: String,
    phone: String,
    student_no: Option<String>,
    card_photo: Option<String>,
    /// 0 pending, 1 approved, 2 rejected, 3 suspended.
    review: u8,
    reason: Option<String>,
    /// Unix milliseconds (serde's optional RFC 3339 does not read back
    /// from bincode).
    suspended_until_ms: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    applied_at: OffsetDateTime,
}

impl From<&CourierProfile> for CourierV2 {
    fn from(p: &CourierProfile) -> Self {
        CourierV2 {
            openid: p.openid.as_str().to_owned(),
            name: p.name.clone(),
            phone: p.phone.as_str().to_owned(),
            student_no: p.student_no.clone(),
            card_photo: p.card_photo.as_ref().map(|c| c.as_str().to_owned()),
            review: match p.review {
                Review::Pending => 0,
                Review::Approved => 1,
                Review::Rejected => 2,
                Review::Suspended => 3,
            },
            reason: p.reason.clone(),
            suspended_until_ms: p.suspended_until.map(crate::domain::unix_ms),
            applied_at: p.applied_at,
        }
    }
}

impl CourierV2 {
    /// The profile it holds.
    pub(super) fn domain(self) -> Result<CourierProfile, Unreadable> {
        Ok(CourierProfile {
            openid: open_id(&self.openid)?,
            name: self.name,
            phone: PhoneNumber::parse(&self.phone).map_err(|_| Unreadable)?,
            student_no: self.student_no,
            card_photo: self
                .card_photo
                .as_deref()
                .map(|c| UploadId::parse(c).map_err(|_| Unreadable))
                .transpose()?,
            review: match self.review {
                0 => Review::Pending,
                1 => Review::Approved,
                2 => Review::Rejected,
                3 => Review::Suspended,
                _ => return Err(Unreadable),
            },
            reason: self.reason,
            suspended_until: self
                .suspended_until_ms
                .map(|ms| {
                    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                        .map_err(|_| Unreadable)
                })
                .transpose()?,
            applied_at: self.applied_at,
            name_flagged: false,
            campus: None,
        })
    }
}

/// A courier profile whose name WeChat's content check flagged (tag
/// `COURIER_V3`): the v2 record and the mark.
#[derive(Serialize, Deserialize)]
pub(super) struct CourierV3 {
    v2: CourierV2,
    name_flagged: bool,
}

impl From<&CourierProfile> for CourierV3 {
    fn from(p: &CourierProfile) -> Self {
        CourierV3 {
            v2: CourierV2::from(p),
            name_flagged: p.name_flagged,
        }
    }
}

impl CourierV3 {
    /// The profile it holds.
    pub(super) fn domain(self) -> Result<CourierProfile, Unreadable> {
        let name_flagged = self.name_flagged;
        self.v2
            .domain()
            .map(|p| CourierProfile { name_flagged, ..p })
    }
}

/// A courier profile that knows the campus they work on (tag
/// `COURIER_V4`): the v3 record and the campus id.
#[derive(Serialize, Deserialize)]
pub(super) struct CourierV4 {
    v3: CourierV3,
    campus: String,
}

impl CourierV4 {
    /// The record of a profile with a campus (None: it has none).
    pub(super) fn of(p: &CourierProfile) -> Option<Self> {
        Some(CourierV4 {
            v3: CourierV3::from(p),
            campus: p.campus.as_ref()?.as_str().to_owned(),
        })
    }

    /// The profile it holds.
    pub(super) fn domain(self) -> Result<CourierProfile, Unreadable> {
        let campus = CampusId::parse(&self.campus).map_err(|_| Unreadable)?;
        self.v3.domain().map(|p| CourierProfile {
            campus: Some(campus),
            ..p
        })
    }
}

/// An operator (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(super) struct OperatorV1 {
    name: String,
    role: u8,
    campuses: Vec<String>,
    token_hash: [u8; 32],
    created_at_ms: i64,
    revoked_at_ms: Option<i64>,
}

fn time_of(ms: i64) -> Result<OffsetDateTime, Unreadable> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|_| Unreadable)
}

impl Stored for OperatorRecord {
    type Record = OperatorV1;
    fn to_record(&self) -> OperatorV1 {
        OperatorV1 {
            name: self.name.as_str().to_owned(),
            role: match self.role {
                Role::Viewer => 0,
                Role::Dispatcher => 1,
                Role::Finance => 2,
                Role::Admin => 3,
            },
            campuses: self.campuses.clone(),
            token_hash: self.token_hash,
            created_at_ms: crate::domain::unix_ms(self.created_at),
            revoked_at_ms: self.revoked_at.map(crate::domain::unix_ms),
        }
    }
    fn from_record(r: OperatorV1) -> Result<Self, Unreadable> {
        Ok(OperatorRecord {
            name: OperatorName::parse(&r.name).map_err(|_| Unreadable)?,
            role: match r.role {
                0 => Role::Viewer,
                1 => Role::Dispatcher,
                2 => Role::Finance,
                3 => Role::Admin,
                _ => return Err(Unreadable),
            },
            campuses: r.campuses,
            token_hash: r.token_hash,
            created_at: time_of(r.created_at_ms)?,
            revoked_at: r.revoked_at_ms.map(time_of).transpose()?,
        })
    }
}

/// A block on a user (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(super) struct BlockV1 {
    reason: String,
    at_ms: i64,
}

impl Stored for Block {
    type Record = BlockV1;
    fn to_record(&self) -> BlockV1 {
        BlockV1 {
            reason: self.reason.clone(),
            at_ms: crate::domain::unix_ms(self.at),
        }
    }
    fn from_record(r: BlockV1) -> Result<Self, Unreadable> {
        Ok(Block {
            reason: r.reason,
            at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.at_ms) * 1_000_000)
                .map_err(|_| Unreadable)?,
        })
    }
}

/// An uploaded photo (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(super) struct UploadV1 {
    id: String,
    owner: String,
    /// 0 JPEG, 1 PNG.
    image: u8,
    size: u32,
    width: u32,
    height: u32,
    order: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl Stored for Upload {
    type Record = UploadV1;
    fn to_record(&self) -> UploadV1 {
        UploadV1 {
            id: self.id.as_str().to_owned(),
            owner: self.owner.as_str().to_owned(),
            image: match self.image {
                ImageType::Jpeg => 0,
                ImageType::Png => 1,
            },
            size: self.size,
            width: self.width,
            height: self.height,
            order: self.order.as_ref().map(|o| o.as_str().to_owned()),
            created_at: self.created_at,
        }
    }
    fn from_record(r: UploadV1) -> Result<Self, Unreadable> {
        Ok(Upload {
            id: UploadId::parse(&r.id).map_err(|_| Unreadable)?,
            owner: open_id(&r.owner)?,
            image: match r.image {
                0 => ImageType::Jpeg,
                1 => ImageType::Png,
                _ => return Err(Unreadable),
            },
            size: r.size,
            width: r.width,
            height: r.height,
            order: r.order.as_deref().map(order_id).transpose()?,
            created_at: r.created_at,
        })
    }
}

impl Stored for PaymentRecord {
    type Record = PaymentV1;
    fn to_record(&self) -> PaymentV1 {
        self.into()
    }
    fn from_record(r: PaymentV1) -> Result<Self, Unreadable> {
        r.domain()
    }
}

/// A money event waiting in the ledger's inbox (tag `RECORD_V1`; the
/// variant index is the disk value).
#[derive(Serialize, Deserialize)]
pub(super) enum MoneyEventV1 {
    Paid {
        order: String,
        total: u32,
    },
    Completed {
        order: String,
        courier: String,
        total: u32,
        tip: u32,
    },
    Refunded {
        order: String,
        amount: u32,
        by_hand: bool,
    },
    WithdrawalRequested {
        withdrawal: String,
        courier: String,
        amount: u32,
    },
    WithdrawalPaid {
        withdrawal: String,
        courier: String,
        amount: u32,
    },
    WithdrawalReturned {
        withdrawal: String,
        courier: String,
        amount: u32,
    },
    // Appended: earlier records keep their variant numbers.
    CompletedOnCampus {
        order: String,
        courier: String,
        total: u32,
        tip: u32,
        campus: String,
    },
    PaidOnCampus {
        order: String,
        total: u32,
        campus: String,
    },
}

fn withdrawal_id(s: &str) -> Result<WithdrawalId, Unreadable> {
    WithdrawalId::parse(s).map_err(|_| Unreadable)
}

fn order_id(s: &str) -> Result<OrderId, Unreadable> {
    OrderId::parse(s).map_err(|_| Unreadable)
}

impl Stored for MoneyEvent {
    type Record = MoneyEventV1;
    fn to_record(&self) -> MoneyEventV1 {
        match self {
            MoneyEvent::Paid {
                order,
                total,
                campus: Some(campus),
            } => MoneyEventV1::PaidOnCampus {
                order: order.to_string(),
                total: *total,
                campus: campus.to_string(),
            },
            MoneyEvent::Paid {
                order,
                total,
                campus: None,
            } => MoneyEventV1::Paid {
                order: order.to_string(),
                total: *total,
            },
            MoneyEvent::Completed {
                order,
                courier,
                total,
                tip,
                campus: None,
            } => MoneyEventV1::Completed {
                order: order.to_string(),
                courier: courier.to_string(),
                total: *total,
                tip: *tip,
            },
            MoneyEvent::Completed {
                order,
                courier,
                total,
                tip,
                campus: Some(campus),
            } => MoneyEventV1::CompletedOnCampus {
                order: order.to_string(),
                courier: courier.to_string(),
                total: *total,
                tip: *tip,
                campus: campus.to_string(),
            },
            MoneyEvent::Refunded {
                order,
                amount,
                by_hand,
            } => MoneyEventV1::Refunded {
                order: order.to_string(),
                amount: *amount,
                by_hand: *by_hand,
            },
            MoneyEvent::WithdrawalRequested {
                withdrawal,
                courier,
                amount,
            } => MoneyEventV1::WithdrawalRequested {
                withdrawal: withdrawal.to_string(),
                courier: courier.to_string(),
                amount: *amount,
            },
            MoneyEvent::WithdrawalPaid {
                withdrawal,
                courier,
                amount,
            } => MoneyEventV1::WithdrawalPaid {
                withdrawal: withdrawal.to_string(),
                courier: courier.to_string(),
                amount: *amount,
            },
            MoneyEvent::WithdrawalReturned {
                withdrawal,
                courier,
                amount,
            } => MoneyEventV1::WithdrawalReturned {
                withdrawal: withdrawal.to_string(),
                courier: courier.to_string(),
                amount: *amount,
            },
        }
    }
    fn from_record(r: MoneyEventV1) -> Result<Self, Unreadable> {
        Ok(match r {
            MoneyEventV1::Paid { order, total } => MoneyEvent::Paid {
                order: order_id(&order)?,
                total,
                campus: None,
            },
            MoneyEventV1::PaidOnCampus {
                order,
                total,
                campus,
            } => MoneyEvent::Paid {
                order: order_id(&order)?,
                total,
                campus: Some(CampusId::parse(&campus).map_err(|_| Unreadable)?),
            },
            MoneyEventV1::Completed {
                order,
                courier,
                total,
                tip,
            } => MoneyEvent::Completed {
                order: order_id(&order)?,
                courier: open_id(&courier)?,
                total,
                tip,
                campus: None,
            },
            MoneyEventV1::CompletedOnCampus {
                order,
                courier,
                total,
                tip,
                campus,
            } => MoneyEvent::Completed {
                order: order_id(&order)?,
                courier: open_id(&courier)?,
                total,
                tip,
                campus: Some(CampusId::parse(&campus).map_err(|_| Unreadable)?),
            },
            MoneyEventV1::Refunded {
                order,
                amount,
                by_hand,
            } => MoneyEvent::Refunded {
                order: order_id(&order)?,
                amount,
                by_hand,
            },
            MoneyEventV1::WithdrawalRequested {
                withdrawal,
                courier,
                amount,
            } => MoneyEvent::WithdrawalRequested {
                withdrawal: withdrawal_id(&withdrawal)?,
                courier: open_id(&courier)?,
                amount,
            },
            MoneyEventV1::WithdrawalPaid {
                withdrawal,
                courier,
                amount,
            } => MoneyEvent::WithdrawalPaid {
                withdrawal: withdrawal_id(&withdrawal)?,
                courier: open_id(&courier)?,
                amount,
            },
            MoneyEventV1::WithdrawalReturned {
                withdrawal,
                courier,
                amount,
            } => MoneyEvent::WithdrawalReturned {
                withdrawal: withdrawal_id(&withdrawal)?,
                courier: open_id(&courier)?,
                amount,
            },
        })
    }
}

/// Posting kinds as stored (the variant index is the disk value).
#[derive(Serialize, Deserialize, Clone, Copy)]
enum PostingKindRecord {
    Payment,
    Earning,
    Refund,
    Withdrawal,
    Payout,
    WithdrawalReturned,
}

impl From<PostingKind> for PostingKindRecord {
    fn from(k: PostingKind) -> Self {
        match k {
            PostingKind::Payment => Self::Payment,
            PostingKind::Earning => Self::Earning,
            PostingKind::Refund => Self::Refund,
            PostingKind::Withdrawal => Self::Withdrawal,
            PostingKind::Payout => Self::Payout,
            PostingKind::WithdrawalReturned => Self::WithdrawalReturned,
        }
    }
}

impl From<PostingKindRecord> for PostingKind {
    fn from(k: PostingKindRecord) -> Self {
        match k {
            PostingKindRecord::Payment => Self::Payment,
            PostingKindRecord::Earning => Self::Earning,
            PostingKindRecord::Refund => Self::Refund,
            PostingKindRecord::Withdrawal => Self::Withdrawal,
            PostingKindRecord::Payout => Self::Payout,
            PostingKindRecord::WithdrawalReturned => Self::WithdrawalReturned,
        }
    }
}

/// What a posting is about, as stored.
#[derive(Serialize, Deserialize)]
enum SubjectRecord {
    Order(String),
    Withdrawal(String),
}

impl From<&Subject> for SubjectRecord {
    fn from(s: &Subject) -> Self {
        match s {
            Subject::Order(id) => Self::Order(id.to_string()),
            Subject::Withdrawal(id) => Self::Withdrawal(id.to_string()),
        }
    }
}

impl SubjectRecord {
    fn domain(&self) -> Result<Subject, Unreadable> {
        Ok(match self {
            Self::Order(id) => Subject::Order(order_id(id)?),
            Self::Withdrawal(id) => Subject::Withdrawal(withdrawal_id(id)?),
        })
    }
}

/// A posting as stored under its idempotency key (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(super) struct PostingV1 {
    at_unix_ms: i64,
    kind: PostingKindRecord,
    subject: SubjectRecord,
    legs: Vec<(String, i64)>,
}

impl Stored for Posted {
    type Record = PostingV1;
    fn to_record(&self) -> PostingV1 {
        PostingV1 {
            at_unix_ms: self.at_unix_ms,
            kind: self.posting.kind.into(),
            subject: (&self.posting.subject).into(),
            legs: self
                .posting
                .legs
                .iter()
                .map(|l| (l.account.key(), l.amount))
                .collect(),
        }
    }
    fn from_record(r: PostingV1) -> Result<Self, Unreadable> {
        let legs = r
            .legs
            .into_iter()
            .map(|(account, amount)| {
                Account::parse(&account)
                    .map(|account| Leg { account, amount })
                    .ok_or(Unreadable)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Posted {
            at_unix_ms: r.at_unix_ms,
            posting: Posting {
                // The key is where the record is stored, not in it.
                key: String::new(),
                kind: r.kind.into(),
                subject: r.subject.domain()?,
                legs,
            },
        })
    }
}

/// One line of an account's statement as stored (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(super) struct EntryV1 {
    at_unix_ms: i64,
    kind: PostingKindRecord,
    subject: SubjectRecord,
    amount: i64,
}

impl Stored for Entry {
    type Record = EntryV1;
    fn to_record(&self) -> EntryV1 {
        EntryV1 {
            at_unix_ms: self.at_unix_ms,
            kind: self.kind.into(),
            subject: (&self.subject).into(),
            amount: self.amount,
        }
    }
    fn from_record(r: EntryV1) -> Result<Self, Unreadable> {
        Ok(Entry {
            seq: 0,
            at_unix_ms: r.at_unix_ms,
            kind: r.kind.into(),
            subject: r.subject.domain()?,
            amount: r.amount,
        })
    }
}

/// Withdrawal statuses as stored (the variant index is the disk value).
#[derive(Serialize, Deserialize, Clone, Copy)]
enum WithdrawalStatusRecord {
    Reviewing,
    Transferring,
    WaitUserConfirm,
    Succeeded,
    Rejected,
    Failed,
    Cancelled,
}

impl From<WithdrawalStatus> for WithdrawalStatusRecord {
    fn from(s: WithdrawalStatus) -> Self {
        match s {
            WithdrawalStatus::Reviewing => Self::Reviewing,
            WithdrawalStatus::Transferring => Self::Transferring,
            WithdrawalStatus::WaitUserConfirm => Self::WaitUserConfirm,
            WithdrawalStatus::Succeeded => Self::Succeeded,
            WithdrawalStatus::Rejected => Self::Rejected,
            WithdrawalStatus::Failed => Self::Failed,
            WithdrawalStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl From<WithdrawalStatusRecord> for WithdrawalStatus {
    fn from(s: WithdrawalStatusRecord) -> Self {
        match s {
            WithdrawalStatusRecord::Reviewing => Self::Reviewing,
            WithdrawalStatusRecord::Transferring => Self::Transferring,
            WithdrawalStatusRecord::WaitUserConfirm => Self::WaitUserConfirm,
            WithdrawalStatusRecord::Succeeded => Self::Succeeded,
            WithdrawalStatusRecord::Rejected => Self::Rejected,
            WithdrawalStatusRecord::Failed => Self::Failed,
            WithdrawalStatusRecord::Cancelled => Self::Cancelled,
        }
    }
}

/// A withdrawal as stored (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(super) struct WithdrawalV1 {
    id: String,
    courier: String,
    amount_fen: u32,
    status: WithdrawalStatusRecord,
    reason: String,
    package_info: Option<String>,
    transfer_bill_no: Option<String>,
    created_at_unix_ms: i64,
    updated_at_unix_ms: i64,
}

fn at_ms(ms: i64) -> Result<OffsetDateTime, Unreadable> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|_| Unreadable)
}

impl Stored for Withdrawal {
    type Record = WithdrawalV1;
    fn to_record(&self) -> WithdrawalV1 {
        WithdrawalV1 {
            id: self.id.to_string(),
            courier: self.courier.to_string(),
            amount_fen: self.amount_fen,
            status: self.status.into(),
            reason: self.reason.clone(),
            package_info: self.package_info.clone(),
            transfer_bill_no: self.transfer_bill_no.clone(),
            created_at_unix_ms: crate::domain::unix_ms(self.created_at),
            updated_at_unix_ms: crate::domain::unix_ms(self.updated_at),
        }
    }
    fn from_record(r: WithdrawalV1) -> Result<Self, Unreadable> {
        Ok(Withdrawal {
            id: withdrawal_id(&r.id)?,
            courier: open_id(&r.courier)?,
            amount_fen: r.amount_fen,
            status: r.status.into(),
            reason: r.reason,
            package_info: r.package_info,
            transfer_bill_no: r.transfer_bill_no,
            created_at: at_ms(r.created_at_unix_ms)?,
            updated_at: at_ms(r.updated_at_unix_ms)?,
        })
    }
}

/// A mismatch as stored (kind: 0 missing in the ledger, 1 missing in the
/// bill, 2 amounts differ).
#[derive(Serialize, Deserialize)]
pub(super) struct MismatchV1 {
    kind: u8,
    what: String,
    order_id: String,
    bill_fen: Option<u64>,
    ledger_fen: Option<u64>,
}

/// A day's reconciliation as stored (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(super) struct ReconciliationV1 {
    date: String,
    ran_at_unix_ms: i64,
    bill_lines: u64,
    ledger_lines: u64,
    matched: u64,
    mismatches: Vec<MismatchV1>,
}

impl Stored for Reconciliation {
    type Record = ReconciliationV1;
    fn to_record(&self) -> ReconciliationV1 {
        ReconciliationV1 {
            date: self.date.clone(),
            ran_at_unix_ms: self.ran_at_unix_ms,
            bill_lines: self.bill_lines,
            ledger_lines: self.ledger_lines,
            matched: self.matched,
            mismatches: self
                .mismatches
                .iter()
                .map(|m| MismatchV1 {
                    kind: match m.kind {
                        MismatchKind::MissingInLedger => 0,
                        MismatchKind::MissingInBill => 1,
                        MismatchKind::AmountDiffers => 2,
                    },
                    what: m.what.clone(),
                    order_id: m.order_id.clone(),
                    bill_fen: m.bill_fen,
                    ledger_fen: m.ledger_fen,
                })
                .collect(),
        }
    }
    fn from_record(r: ReconciliationV1) -> Result<Self, Unreadable> {
        let mismatches = r
            .mismatches
            .into_iter()
            .map(|m| {
                let kind = match m.kind {
                    0 => MismatchKind::MissingInLedger,
                    1 => MismatchKind::MissingInBill,
                    2 => MismatchKind::AmountDiffers,
                    _ => return Err(Unreadable),
                };
                Ok(Mismatch {
                    kind,
                    what: m.what,
                    order_id: m.order_id,
                    bill_fen: m.bill_fen,
                    ledger_fen: m.ledger_fen,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Reconciliation {
            date: r.date,
            ran_at_unix_ms: r.ran_at_unix_ms,
            bill_lines: r.bill_lines,
            ledger_lines: r.ledger_lines,
            matched: r.matched,
            mismatches,
        })
    }
}
