//! Domain values: parsed newtypes, the order record and its status machine.
//!
//! Every value that crosses into the actors is parsed once here; nothing
//! downstream re-validates a bare `String`.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::campus::Campus;

/// A rule broken by an input field; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

impl ValidationError {
    fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// The string conversions every text newtype shares: parse on the way in
/// (so serde can never build an invalid value), plain text on the way out.
macro_rules! string_newtype {
    ($t:ident) => {
        impl TryFrom<String> for $t {
            type Error = ValidationError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$t> for String {
            fn from(v: $t) -> Self {
                v.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Largest fee an order may carry, in fen (1 000 yuan).
pub const MAX_FEE_FEN: u32 = 100_000;
/// Longest `detail` / `note`, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// Longest `pickup_code`, in characters.
pub const MAX_PICKUP_CODE_CHARS: usize = 32;
/// Longest order id: WeChat Pay's `out_trade_no` limit.
pub const MAX_ORDER_ID_CHARS: usize = 32;

/// Characters of an order id that encode its customer.
pub const CUSTOMER_PREFIX_CHARS: usize = 8;

fn customer_tag(customer: &OpenId) -> [u8; 5] {
    let digest = Sha256::digest(customer.as_str().as_bytes());
    let mut tag = [0u8; 5];
    tag.copy_from_slice(&digest[..5]);
    tag
}

/// A stable hash (FNV-1a) of a shard key; unlike the std hasher it never
/// changes between processes or releases.
pub fn stable_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An order id: 1–32 characters of `[A-Za-z0-9]`, usable as `out_trade_no`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrderId(String);

impl OrderId {
    /// Parses an id received from a client.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_ORDER_ID_CHARS
            && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "order id must be 1-32 characters of A-Z, a-z, 0-9",
            ))
        }
    }

    /// A fresh id for `customer`: base32hex of (customer tag 5 bytes, unix
    /// ms 6 bytes, random 9 bytes) — exactly 32 characters. The encoding
    /// keeps byte order, so one customer's orders are one contiguous,
    /// time-ordered key range and need no separate index (one sled write
    /// per order).
    pub fn generate(customer: &OpenId, now: OffsetDateTime) -> Self {
        let mut raw = [0u8; 20];
        raw[..5].copy_from_slice(&customer_tag(customer));
        let millis = unix_ms(now).max(0) as u64;
        raw[5..11].copy_from_slice(&millis.to_be_bytes()[2..]);
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut raw[11..]);
        Self(data_encoding::BASE32HEX_NOPAD.encode(&raw))
    }

    /// When a generated id was made (unix ms); None for an id not made here.
    pub fn created_ms(&self) -> Option<u64> {
        let raw = data_encoding::BASE32HEX_NOPAD
            .decode(self.0.as_bytes())
            .ok()
            .filter(|r| r.len() == 20)?;
        let mut millis = [0u8; 8];
        millis[2..].copy_from_slice(&raw[5..11]);
        Some(u64::from_be_bytes(millis))
    }

    /// The key prefix shared by every id [`OrderId::generate`] makes for `customer`.
    pub fn customer_prefix(customer: &OpenId) -> String {
        data_encoding::BASE32HEX_NOPAD.encode(&customer_tag(customer))
    }

    /// The part of the id that picks its shard: the customer prefix, so that
    /// all of a customer's orders (and idempotency keys) share one owner.
    pub fn shard_key(&self) -> &str {
        &self.0[..self.0.len().min(CUSTOMER_PREFIX_CHARS)]
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype!(OrderId);

/// A WeChat openid: the user's id within this app.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OpenId(String);

impl OpenId {
    /// Parses an openid (1–64 characters of `[A-Za-z0-9_-]`).
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new("openid is malformed"))
        }
    }

    /// The openid as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype!(OpenId);

/// An amount of money in fen, 1 ≤ fen ≤ [`MAX_FEE_FEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Fen(u32);

impl Fen {
    /// Parses a fee from a JSON number (must be an integer in range).
    pub fn parse_json(n: &serde_json::Number) -> Result<Self, ValidationError> {
        let err = || {
            ValidationError::new(format!(
                "fee_fen must be between 1 and {MAX_FEE_FEN} (an integer number of fen)"
            ))
        };
        let v = n.as_u64().ok_or_else(err)?;
        u32::try_from(v).map_err(|_| err()).and_then(Self::try_from)
    }

    /// The amount in fen.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Fen {
    type Error = ValidationError;
    fn try_from(v: u32) -> Result<Self, Self::Error> {
        if (1..=MAX_FEE_FEN).contains(&v) {
            Ok(Self(v))
        } else {
            Err(ValidationError::new(format!(
                "fee_fen must be between 1 and {MAX_FEE_FEN} (an integer number of fen)"
            )))
        }
    }
}

impl From<Fen> for u32 {
    fn from(f: Fen) -> Self {
        f.0
    }
}

/// The id of a place on the campus map; only ids the map knows parse.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlaceId(String);

impl PlaceId {
    /// Parses a place id, which must exist in `campus`; `field` names it in errors.
    pub fn parse(s: &str, campus: &Campus, field: &str) -> Result<Self, ValidationError> {
        if campus.place(s).is_some() {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(format!(
                "{field} is not a place on the campus map"
            )))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A place id not checked against a map (unit tests only).
    #[cfg(test)]
    pub(crate) fn unchecked(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// A client-chosen key that makes order creation idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses the `Idempotency-Key` header: 1–64 visible ASCII characters.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let ok = !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "Idempotency-Key must be 1-64 visible ASCII characters",
            ))
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a free-text field: a length in characters and no control characters
/// other than newline and tab.
pub fn parse_text(
    value: &str,
    field: &str,
    min: usize,
    max: usize,
) -> Result<String, ValidationError> {
    let chars = value.chars().count();
    if chars < min || chars > max {
        let rule = if min == 0 {
            format!("{field} must be at most {max} characters")
        } else {
            format!("{field} must be between {min} and {max} characters")
        };
        return Err(ValidationError(rule));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ValidationError(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value.to_owned())
}

/// What kind of errand an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// What the customer pays the courier.
    pub fee_fen: Fen,
    /// A note for the courier, ≤ 200 characters.
    pub note: String,
    /// When the goods can be picked up (None: at once).
    pub ready_at: Option<OffsetDateTime>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Done.
    Completed,
    /// Cancelled before payment.
    Cancelled,
    /// Money on its way back.
    Refunding,
    /// Money returned.
    Refunded,
}

/// Every status, in life order (for metrics and parsing).
pub const ALL_STATUSES: [Status; 9] = [
    Status::AwaitingPayment,
    Status::Paid,
    Status::Assigned,
    Status::PickedUp,
    Status::Delivered,
    Status::Completed,
    Status::Cancelled,
    Status::Refunding,
    Status::Refunded,
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
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::Refunding => "refunding",
            Status::Refunded => "refunded",
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl Order {
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
            note: new.note,
            ready_at: new.ready_at.unwrap_or(now).max(now),
            status: Status::AwaitingPayment,
            courier: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Applies an event through the status machine, stamping `updated_at`.
    pub fn apply(&mut self, event: Event, now: OffsetDateTime) -> Result<Status, TransitionError> {
        let next = self.status.apply(event)?;
        self.status = next;
        self.updated_at = now;
        if event == Event::Cancel {
            // A cancelled task is nobody's any more.
            self.courier = None;
        }
        Ok(next)
    }

    /// Hands the order to `courier` (through the status machine).
    pub fn assign(
        &mut self,
        courier: OpenId,
        now: OffsetDateTime,
    ) -> Result<Status, TransitionError> {
        let status = self.apply(Event::Assign, now)?;
        self.courier = Some(courier);
        Ok(status)
    }

    /// Takes the order back from its courier.
    pub fn unassign(&mut self, now: OffsetDateTime) -> Result<Status, TransitionError> {
        let status = self.apply(Event::Unassign, now)?;
        self.courier = None;
        Ok(status)
    }

    /// May `who` see this order at all?
    pub fn visible_to(&self, who: &OpenId) -> bool {
        &self.customer == who || self.courier.as_ref() == Some(who)
    }
}

/// Milliseconds since the Unix epoch (times in sled keys, outbox entries,
/// order ids).
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Now, in UTC, truncated to microseconds so that stored and served times agree.
pub fn now_utc() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    let micros = now.microsecond();
    now.replace_microsecond(micros).unwrap_or(now)
}

/// A `wx.login` code as sent by the mini-program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginCode(String);

impl LoginCode {
    /// Parses a code: 1–128 visible ASCII characters.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let ok = !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "code must be 1-128 visible ASCII characters",
            ))
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A login session: who holds the token, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The user.
    pub openid: OpenId,
    /// When the token stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// The parameters the mini-program passes to `wx.requestPayment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayParams {
    /// Unix seconds, as a string (WeChat requires a string).
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    /// Random string.
    #[serde(rename = "nonceStr")]
    pub nonce_str: String,
    /// `prepay_id=...`.
    pub package: String,
    /// `MD5` or `HMAC-SHA256`.
    #[serde(rename = "signType")]
    pub sign_type: String,
    /// The signature over appId and the four above.
    #[serde(rename = "paySign")]
    pub pay_sign: String,
}

/// One order's payment session, owned by the payments actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    /// The order (`out_trade_no`).
    pub order_id: OrderId,
    /// unifiedorder's prepay id.
    pub prepay_id: Option<String>,
    /// What `pay` answered, replayed while the prepay is valid.
    pub params: Option<PayParams>,
    /// When the prepay was made (unix seconds; a plain number keeps the
    /// binary record format simple).
    pub prepaid_at: Option<i64>,
    /// WeChat's transaction id once paid.
    pub transaction_id: Option<String>,
    /// Our refund id once a refund was requested.
    pub out_refund_no: Option<String>,
}

impl PaymentRecord {
    /// An empty session for `order_id`.
    pub fn new(order_id: OrderId) -> Self {
        Self {
            order_id,
            prepay_id: None,
            params: None,
            prepaid_at: None,
            transaction_id: None,
            out_refund_no: None,
        }
    }
}

/// A pooled id that lets the app send a user a message: a template-message
/// form_id (one use) or a paid order's prepay_id (three uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PooledId {
    /// The form_id or prepay_id.
    pub value: String,
    /// Messages it may still carry.
    pub uses_left: u8,
}

/// The devtools' placeholder form_id: not usable, dropped on arrival.
pub const MOCK_FORM_ID: &str = "the formId is a mock one";

/// A form_id as received: 1–64 visible characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormId(String);

impl FormId {
    /// Parses one form_id; `field` names it in errors.
    pub fn parse(s: &str, field: &str) -> Result<Self, ValidationError> {
        let n = s.chars().count();
        if (1..=64).contains(&n) && !s.chars().any(char::is_control) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError(format!("{field} must be 1-64 characters")))
        }
    }

    /// The form_id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A subscribe-message template id: 1–128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateId(String);

impl TemplateId {
    /// Parses one template id; `field` names it in errors.
    pub fn parse(s: &str, field: &str) -> Result<Self, ValidationError> {
        if !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError(format!(
                "{field} must be 1-128 visible ASCII characters"
            )))
        }
    }

    /// The template id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The app's access_token as kept across restarts.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredToken {
    /// The token (a credential: never logged).
    pub value: String,
    /// When it expires (unix seconds).
    pub expires_at: i64,
}

impl fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredToken(***, expires_at={})", self.expires_at)
    }
}

/// A wxacode `scene`: 1–32 characters of the set WeChat allows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scene(String);

impl Scene {
    /// Parses a scene (`[0-9A-Za-z]` and `!#$&'()*+,/:;=?@-._~`).
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"!#$&'()*+,/:;=?@-._~".contains(&b);
        if !s.is_empty() && s.len() <= 32 && s.bytes().all(allowed) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "scene must be 1-32 characters of 0-9 A-Z a-z and !#$&'()*+,/:;=?@-._~",
            ))
        }
    }

    /// The scene.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A mini-program page path for wxacode (empty = the home page).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PagePath(String);

impl PagePath {
    /// Parses a page: at most 128 characters of `[A-Za-z0-9/_-]`, no leading `/`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let ok = s.len() <= 128
            && !s.starts_with('/')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "page must be a mini-program path like pages/index/index (no leading /)",
            ))
        }
    }

    /// The page.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A mainland China mobile number: 11 digits starting with 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a phone number.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.len() == 11 && s.starts_with('1') && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "phone must be a mainland mobile number: 11 digits starting with 1",
            ))
        }
    }
}

/// A registered courier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourierProfile {
    /// The courier's openid.
    pub openid: OpenId,
    /// Display name, 1–32 characters.
    pub name: String,
    /// Contact number.
    pub phone: PhoneNumber,
}

/// What a customer is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A courier took the order.
    Assigned,
    /// The courier picked the goods up.
    PickedUp,
    /// The courier handed them over.
    Delivered,
    /// The money is back.
    Refunded,
}

impl MessageKind {
    /// The message an order status announces, if any.
    pub fn for_status(status: Status) -> Option<Self> {
        match status {
            Status::Assigned => Some(Self::Assigned),
            Status::PickedUp => Some(Self::PickedUp),
            Status::Delivered => Some(Self::Delivered),
            Status::Refunded => Some(Self::Refunded),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assigned => "assigned",
            Self::PickedUp => "picked_up",
            Self::Delivered => "delivered",
            Self::Refunded => "refunded",
        }
    }
}

/// A message waiting in the notifier's outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Increasing id (also the dedup key).
    pub id: u64,
    /// The order it is about.
    pub order_id: OrderId,
    /// The recipient.
    pub to: OpenId,
    /// What happened.
    pub kind: MessageKind,
    /// When it was written (unix ms).
    pub created_at_ms: i64,
    /// Sending attempts so far.
    pub attempts: u32,
    /// Not before (unix ms).
    pub next_attempt_ms: i64,
    /// The permission spent on it, kept across retries.
    pub via: Option<Via>,
}

/// How a message may reach the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Via {
    /// A subscribe-message grant (already taken).
    Subscribe,
    /// A template message with this pooled form_id / prepay_id.
    Template(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_path_reaches_completed() {
        let mut s = Status::AwaitingPayment;
        for e in [
            Event::PaymentConfirmed,
            Event::Assign,
            Event::PickUp,
            Event::Deliver,
            Event::Confirm,
        ] {
            s = s.apply(e).expect("legal transition");
        }
        assert_eq!(s, Status::Completed);
    }

    #[test]
    fn terminal_states_accept_nothing_but_late_payment() {
        for st in [Status::Completed, Status::Refunded] {
            for e in [Event::Cancel, Event::Assign, Event::PaymentConfirmed] {
                assert!(st.apply(e).is_err(), "{st} accepted {e:?}");
            }
        }
        assert_eq!(
            Status::Cancelled.apply(Event::PaymentConfirmed),
            Ok(Status::Refunding)
        );
        assert!(Status::Cancelled.apply(Event::Cancel).is_err());
    }

    #[test]
    fn cancel_is_allowed_until_pickup_and_frees_the_courier() {
        assert_eq!(Status::Assigned.apply(Event::Cancel), Ok(Status::Refunding));
        for st in [Status::PickedUp, Status::Delivered] {
            assert!(st.apply(Event::Cancel).is_err(), "{st} cancelled");
        }
        let customer = OpenId::parse("oCUSTOMER").unwrap();
        let courier = OpenId::parse("oCOURIER").unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        let new = NewOrder {
            kind: OrderKind::Express,
            pickup: Location {
                place_id: PlaceId("a".into()),
                detail: String::new(),
            },
            dropoff: Location {
                place_id: PlaceId("b".into()),
                detail: String::new(),
            },
            pickup_code: String::new(),
            fee_fen: Fen(300),
            note: String::new(),
            ready_at: None,
        };
        let mut order = Order::new(OrderId::generate(&customer, now), customer, new, now);
        order.apply(Event::PaymentConfirmed, now).unwrap();
        order.assign(courier, now).unwrap();
        order.apply(Event::Cancel, now).unwrap();
        assert_eq!(order.status(), Status::Refunding);
        assert_eq!(order.courier, None);
    }

    #[test]
    fn generated_ids_are_valid_grouped_by_customer_and_time_ordered() {
        let a = OpenId::parse("oAAA").unwrap();
        let b = OpenId::parse("oBBB").unwrap();
        let t0 = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        let first = OrderId::generate(&a, t0);
        let later = OrderId::generate(&a, t0 + std::time::Duration::from_millis(1));
        assert_eq!(first.as_str().len(), 32);
        assert!(OrderId::parse(first.as_str()).is_ok());
        assert!(first < later, "ids must sort by creation time");
        assert!(first.as_str().starts_with(&OrderId::customer_prefix(&a)));
        assert_eq!(first.shard_key(), later.shard_key());
        assert_ne!(first.shard_key(), OrderId::generate(&b, t0).shard_key());
        assert_eq!(first.created_ms(), Some(1_790_000_000_000));
        assert_eq!(OrderId::parse("ABC").unwrap().created_ms(), None);
    }

    #[test]
    fn text_counts_characters_not_bytes() {
        let two_hundred = "快".repeat(200);
        assert!(parse_text(&two_hundred, "note", 0, 200).is_ok());
        assert!(parse_text(&format!("{two_hundred}x"), "note", 0, 200).is_err());
        assert!(parse_text("a\u{0}b", "note", 0, 200).is_err());
    }
}
