//! Who and what: order ids (which encode their customer), openids,
//! Idempotency-Keys and wx.login codes.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::*;

/// A fresh 32-character id: `prefix` and 31 characters of base32hex of
/// the time (ms, so ids sort by creation) and 13 random bytes.
pub fn timed_id(prefix: char, now: OffsetDateTime) -> String {
    let mut raw = [0u8; 19];
    let millis = unix_ms(now).max(0) as u64;
    raw[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut raw[6..]);
    format!("{prefix}{}", data_encoding::BASE32HEX_NOPAD.encode(&raw))
}

/// Whether `s` has the shape [`timed_id`] makes with `prefix`.
pub fn is_timed_id(s: &str, prefix: char) -> bool {
    s.len() == 32
        && s.starts_with(prefix)
        && s[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'V').contains(&b))
}

fn customer_tag(customer: &OpenId) -> [u8; 5] {
    let digest = Sha256::digest(customer.as_str().as_bytes());
    let mut tag = [0u8; 5];
    tag.copy_from_slice(&digest[..5]);
    tag
}

/// An order id: 1–32 characters of `[A-Za-z0-9]`, usable as `out_trade_no`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[A-Za-z0-9]{1,32}$")]
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
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$")]
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
