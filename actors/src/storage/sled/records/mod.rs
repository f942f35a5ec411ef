//! Persisted records (orders, payment sessions, people, the ledger): the storage layer's own
//! versioned types, so a change to the domain or API shape never changes
//! what is on disk, and every version ever written keeps reading. Field order and
//! types below *are* the disk format (bincode is positional); a new layout
//! is a new version with its own tag byte.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{
    Account, BillLine, Block, CampusId, Change, ChangedBy, ChinaDay, CourierProfile, Dispute,
    DisputeReason, Entry, Event, Fen, ImageType, Leg, Location, MessageKind, Mismatch,
    MismatchKind, MoneyEvent, OpenId, OperatorName, OperatorRecord, Order, OrderExtras, OrderId,
    OrderKind, OrderParts, OutboxEntry, PayParams, PaymentRecord, PhoneNumber, PlaceId, PooledId,
    Posted, Posting, PostingKind, Reconciliation, Resolution, Review, Role, Session, Status,
    StoredToken, Subject, Tip, Upload, UploadId, Via, Withdrawal, WithdrawalId, WithdrawalStatus,
};

mod ledger;
mod orders;
mod payments;
mod people;

pub(in crate::storage) use orders::*;
pub(in crate::storage) use people::*;

/// A stored value that no longer parses as the domain value.
#[derive(Debug)]
pub(in crate::storage) struct Unreadable;

/// A value the storage layer keeps as its own record type.
pub(in crate::storage) trait Stored: Sized {
    /// The record as written (version tag `RECORD_V1`).
    type Record: Serialize + serde::de::DeserializeOwned;
    /// The record for this value.
    fn to_record(&self) -> Self::Record;
    /// The value a record holds.
    fn from_record(r: Self::Record) -> Result<Self, Unreadable>;
}

fn open_id(s: &str) -> Result<OpenId, Unreadable> {
    OpenId::parse(s).map_err(|_| Unreadable)
}

fn order_id(s: &str) -> Result<OrderId, Unreadable> {
    OrderId::parse(s).map_err(|_| Unreadable)
}

fn withdrawal_id(s: &str) -> Result<WithdrawalId, Unreadable> {
    WithdrawalId::parse(s).map_err(|_| Unreadable)
}

/// A time stored as Unix milliseconds.
fn time_of_ms(ms: i64) -> Result<OffsetDateTime, Unreadable> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|_| Unreadable)
}
