//! Domain values: parsed newtypes, the order record and its status machine,
//! one concept per file ([`ids`](self) for order ids and openids, `money`,
//! `place`, `order`, `session`, `outbox`, `token`, `share`,
//! `courier`).
//!
//! Every value that crosses into the actors is parsed once here; nothing
//! downstream re-validates a bare `String`, and serde builds a newtype only
//! through its parser.

use time::OffsetDateTime;

/// A rule broken by an input field; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

impl ValidationError {
    /// A rule broken, in words a client can act on.
    pub(crate) fn new(msg: impl Into<String>) -> Self {
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

mod book;
mod courier;
mod day;
mod dispute;
mod history;
mod ids;
mod money;
mod object;
mod operator;
mod order;
mod outbox;
mod payment;
mod place;
mod postings;
mod reconciliation;
mod session;
mod shard;
mod share;
mod token;
mod upload;
mod withdrawal;

pub use book::*;
pub use courier::*;
pub use day::*;
pub use dispute::*;
pub use history::*;
pub use ids::*;
pub use money::*;
pub use object::*;
pub use operator::*;
pub use order::*;
pub use outbox::*;
pub use payment::*;
pub use place::*;
pub use postings::*;
pub use reconciliation::*;
pub use session::*;
pub use shard::*;
pub use share::*;
pub use token::*;
pub use upload::*;
pub use withdrawal::*;

/// Largest fee an order may carry, in fen (1 000 yuan).
pub const MAX_FEE_FEN: u32 = 100_000;
/// The largest tip, in fen.
pub const MAX_TIP_FEN: u32 = 10_000;
/// Longest `detail` / `note`, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// Longest `pickup_code`, in characters.
pub const MAX_PICKUP_CODE_CHARS: usize = 32;
/// Longest order id: WeChat Pay's `out_trade_no` limit.
pub const MAX_ORDER_ID_CHARS: usize = 32;

/// Characters of an order id that encode its customer.
pub const CUSTOMER_PREFIX_CHARS: usize = 8;

/// A stable hash (FNV-1a) of a shard key; unlike the std hasher it never
/// changes between processes or releases.
pub fn stable_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_builds_newtypes_only_through_their_parsers() {
        assert!(serde_json::from_str::<PhoneNumber>("\"12345\"").is_err());
        assert!(serde_json::from_str::<PhoneNumber>("\"13800138000\"").is_ok());
        assert!(serde_json::from_str::<PlaceId>("\"\"").is_err());
        assert!(serde_json::from_str::<PlaceId>(&format!("\"{}\"", "x".repeat(65))).is_err());
        assert!(serde_json::from_str::<OpenId>("\"bad id!\"").is_err());
        assert!(serde_json::from_str::<Fen>("0").is_err());
    }

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
        let new = new_order(0);
        let mut order = Order::new(OrderId::generate(&customer, now), customer, new, now);
        order
            .apply(Event::PaymentConfirmed, ChangedBy::WeChatPay, now)
            .unwrap();
        order.assign(courier, ChangedBy::Dispatcher, now).unwrap();
        order
            .apply(Event::Cancel, ChangedBy::Customer, now)
            .unwrap();
        assert_eq!(order.status(), Status::Refunding);
        assert_eq!(order.courier, None);
    }

    /// An order of 300 fen and `tip` fen between two places.
    fn new_order(tip: u32) -> NewOrder {
        NewOrder {
            kind: OrderKind::Express,
            pickup: Location {
                place_id: PlaceId::unchecked("a"),
                detail: String::new(),
            },
            dropoff: Location {
                place_id: PlaceId::unchecked("b"),
                detail: String::new(),
            },
            pickup_code: String::new(),
            fee_fen: Fen::try_from(300u32).expect("fee"),
            tip_fen: Tip::try_from(tip).expect("tip"),
            note: String::new(),
            ready_at: None,
            contact_phone: None,
            flagged: false,
            campus: CampusId::parse("main").expect("campus id"),
        }
    }

    /// A delivered order of 300 fen + 100 tip.
    fn delivered_order(now: OffsetDateTime) -> Order {
        let customer = OpenId::parse("oCUSTOMER").unwrap();
        let new = new_order(100);
        let mut order = Order::new(OrderId::generate(&customer, now), customer, new, now);
        order
            .apply(Event::PaymentConfirmed, ChangedBy::WeChatPay, now)
            .unwrap();
        let courier = OpenId::parse("oCOURIER").unwrap();
        order
            .assign(courier.clone(), ChangedBy::Dispatcher, now)
            .unwrap();
        for e in [Event::PickUp, Event::Deliver] {
            order
                .apply(e, ChangedBy::Courier(courier.clone()), now)
                .unwrap();
        }
        order
    }

    fn dispute(flagged: bool) -> NewDispute {
        NewDispute {
            reason: DisputeReason::Damaged,
            text: "洒了".into(),
            photos: Vec::new(),
            flagged,
        }
    }

    #[test]
    fn a_dispute_pauses_a_delivery_until_a_resolution_of_nothing_part_or_all() {
        let now = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        for (refund, status, partial) in [
            (0, Status::Completed, true),
            (150, Status::Refunding, true),
            (400, Status::Refunding, false),
        ] {
            let mut order = delivered_order(now);
            assert_eq!(
                order.open_dispute(dispute(refund == 150), now),
                Ok(Status::Disputed)
            );
            assert!(
                order.status().apply(Event::Confirm).is_err(),
                "no confirm in dispute"
            );
            assert_eq!(order.extras.flagged, refund == 150);
            let to = order
                .resolve(refund, "note".into(), None, now)
                .expect("resolved");
            assert_eq!(to, status);
            assert_eq!(order.refund_fen(), refund);
            assert_eq!(order.refund_is_partial(), partial);
            assert_eq!(order.resolution().map(|r| r.refund_fen), Some(refund));
            assert!(
                order.courier.is_some(),
                "the courier stays on a resolved order"
            );
            // Resolved: a second resolution is a conflict, whatever the amount.
            assert!(matches!(
                order.resolve(9_999, "again".into(), None, now),
                Err(ResolveError::Transition(_))
            ));
        }
        let mut order = delivered_order(now);
        order.open_dispute(dispute(false), now).unwrap();
        assert!(matches!(
            order.resolve(401, "too much".into(), None, now),
            Err(ResolveError::Invalid(_))
        ));
        assert_eq!(
            order.status(),
            Status::Disputed,
            "a refused resolution changes nothing"
        );
        assert!(
            order.open_dispute(dispute(false), now).is_err(),
            "one dispute"
        );
        let paid_only = {
            let mut o = delivered_order(now);
            o.apply(Event::Confirm, ChangedBy::Customer, now).unwrap();
            o
        };
        assert!(
            paid_only.status().apply(Event::Dispute).is_err(),
            "completed cannot be disputed"
        );
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
