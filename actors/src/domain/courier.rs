//! Couriers: profiles and phone numbers.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::*;

/// A mainland China mobile number: 11 digits starting with 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^1[0-9]{10}$")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// The number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

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

string_newtype!(PhoneNumber);

/// A registered courier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourierProfile {
    /// The courier's openid.
    pub openid: OpenId,
    /// Display name, 1–32 characters.
    pub name: String,
    /// Contact number.
    pub phone: PhoneNumber,
}
