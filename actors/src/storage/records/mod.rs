//! Persisted records (orders, payment sessions, people, the ledger): the storage layer's own
//! versioned types, so a change to the domain or API shape never changes
//! what is on disk, and every version ever written keeps reading. Both
//! engines keep a value as these bytes (sled as a tree's value,
//! PostgreSQL in a `body` column beside the columns it is looked up by),
//! so a store moves between engines byte for byte. Field order and
//! types below *are* the disk format (bincode is positional); a new layout
//! is a new version with its own tag byte.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::StorageError;

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

/// Version byte in front of every stored record: v1 is bincode of the
/// serde shape (compact — sled's cost grows with record size).
pub(in crate::storage) const RECORD_V1: u8 = 1;
/// Orders since `ready_at`: v2 is bincode of the order with it. A v1 order
/// reads as ready when it was created.
pub(in crate::storage) const ORDER_V2: u8 = 2;
/// Tag of an order record with its history (v2 fields, then the changes);
/// an order without history is still written as v2.
pub(in crate::storage) const ORDER_V3: u8 = 3;
/// Tag of an order with a tip (the v3 record, then the tip); an order
/// without one is still written as v2 or v3.
pub(in crate::storage) const ORDER_V4: u8 = 4;
/// Tag of an order with extras (the v4 record, then contact, proof, a
/// dispute, timer marks); an order without them is still written as before.
pub(in crate::storage) const ORDER_V5: u8 = 5;
/// Orders on a campus: the v5 record and the campus id.
pub(in crate::storage) const ORDER_V6: u8 = 6;
/// Tag of a courier profile with its review; a v1 profile (before
/// review) reads as approved.
pub(in crate::storage) const COURIER_V2: u8 = 2;
/// A courier profile whose name the content check flagged.
pub(in crate::storage) const COURIER_V3: u8 = 3;
/// A courier profile with the campus they work on (the v3 record, then
/// the campus id).
pub(in crate::storage) const COURIER_V4: u8 = 4;

pub(in crate::storage) fn encode_order(order: &Order) -> Result<Vec<u8>, StorageError> {
    if order.extras.campus.is_some() {
        let mut out = encode(&OrderV6::from(order))?;
        out[0] = ORDER_V6;
        return Ok(out);
    }
    if !order.extras.is_empty() {
        let mut out = encode(&OrderV5::from(order))?;
        out[0] = ORDER_V5;
        return Ok(out);
    }
    if order.tip_fen.get() > 0 {
        let mut out = encode(&OrderV4::from(order))?;
        out[0] = ORDER_V4;
        return Ok(out);
    }
    if order.history().is_empty() {
        // The create path: exactly the v2 bytes, no history to carry.
        let mut out = encode(&OrderV2::from(order))?;
        out[0] = ORDER_V2;
        return Ok(out);
    }
    let mut out = encode(&OrderV3::from(order))?;
    out[0] = ORDER_V3;
    Ok(out)
}

pub(in crate::storage) fn decode_order(bytes: &[u8], key: &str) -> Result<Order, StorageError> {
    let corrupt = || StorageError::Corrupt {
        key: key.to_owned(),
    };
    let v5: OrderV5 = match bytes.split_first() {
        Some((&ORDER_V6, body)) => {
            let record: OrderV6 = bincode::deserialize(body).map_err(|_| corrupt())?;
            return record.domain().map_err(|_| corrupt());
        }
        Some((&ORDER_V5, body)) => bincode::deserialize(body).map_err(|_| corrupt())?,
        Some((&ORDER_V4, body)) => bincode::deserialize::<OrderV4>(body)
            .map_err(|_| corrupt())?
            .into(),
        Some((&ORDER_V3, body)) => {
            OrderV4::from(bincode::deserialize::<OrderV3>(body).map_err(|_| corrupt())?).into()
        }
        Some((&ORDER_V2, body)) => OrderV4::from(OrderV3::from(
            bincode::deserialize::<OrderV2>(body).map_err(|_| corrupt())?,
        ))
        .into(),
        Some((&RECORD_V1, body)) => OrderV4::from(OrderV3::from(
            bincode::deserialize::<OrderV1>(body)
                .map_err(|_| corrupt())?
                .upgrade(),
        ))
        .into(),
        _ => return Err(corrupt()),
    };
    v5.domain().map_err(|_| corrupt())
}

/// A value as its storage record, tagged.
pub(in crate::storage) fn store<T: Stored>(value: &T) -> Result<Vec<u8>, StorageError> {
    encode(&value.to_record())
}

/// The value a tagged storage record holds.
pub(in crate::storage) fn load<T: Stored>(bytes: &[u8], key: &str) -> Result<T, StorageError> {
    let record: T::Record = decode(bytes, key)?;
    T::from_record(record).map_err(|_| StorageError::Corrupt {
        key: key.to_owned(),
    })
}

pub(in crate::storage) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    encode_tagged(RECORD_V1, value)
}

pub(in crate::storage) fn encode_tagged<T: Serialize>(
    tag: u8,
    value: &T,
) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::with_capacity(256);
    out.push(tag);
    bincode::serialize_into(&mut out, value).map_err(|_| StorageError::Corrupt {
        key: "(encode)".into(),
    })?;
    Ok(out)
}

pub(in crate::storage) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    key: &str,
) -> Result<T, StorageError> {
    let corrupt = || StorageError::Corrupt {
        key: key.to_owned(),
    };
    match bytes.split_first() {
        Some((&RECORD_V1, body)) => bincode::deserialize(body).map_err(|_| corrupt()),
        _ => Err(corrupt()),
    }
}

/// A courier profile as its record: profiles without a campus or a flag
/// keep the bytes earlier releases read.
pub(in crate::storage) fn encode_courier(
    profile: &CourierProfile,
) -> Result<Vec<u8>, StorageError> {
    if let Some(v4) = CourierV4::of(profile) {
        encode_tagged(COURIER_V4, &v4)
    } else if profile.name_flagged {
        encode_tagged(COURIER_V3, &CourierV3::from(profile))
    } else {
        encode_tagged(COURIER_V2, &CourierV2::from(profile))
    }
}

/// A stored profile of any version.
pub(in crate::storage) fn courier_of(
    bytes: &[u8],
    key: &str,
) -> Result<CourierProfile, StorageError> {
    let corrupt = || StorageError::Corrupt {
        key: key.to_owned(),
    };
    match bytes.split_first() {
        Some((&COURIER_V4, body)) => bincode::deserialize::<CourierV4>(body)
            .map_err(|_| corrupt())?
            .domain()
            .map_err(|_| corrupt()),
        Some((&COURIER_V3, body)) => bincode::deserialize::<CourierV3>(body)
            .map_err(|_| corrupt())?
            .domain()
            .map_err(|_| corrupt()),
        Some((&COURIER_V2, body)) => bincode::deserialize::<CourierV2>(body)
            .map_err(|_| corrupt())?
            .domain()
            .map_err(|_| corrupt()),
        Some((&RECORD_V1, body)) => bincode::deserialize::<CourierV1>(body)
            .map_err(|_| corrupt())?
            .upgrade()
            .map_err(|_| corrupt()),
        _ => Err(corrupt()),
    }
}
