//! Campuses and the places on their maps.

use serde::{Deserialize, Serialize};

use crate::campus::Campus;

use super::*;

/// The id of a place on the campus map; only ids the map knows parse.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "dorm-1")]
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

    /// A stored place id: 1–64 characters, as the campus map allows (the
    /// map may have changed since, so only the shape is checked).
    fn stored(s: String) -> Result<Self, ValidationError> {
        if s.is_empty() || s.len() > 64 {
            return Err(ValidationError::new("a place id has 1-64 characters"));
        }
        Ok(Self(s))
    }

    /// A place id not checked against a map (unit tests only).
    #[cfg(test)]
    pub(crate) fn unchecked(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl TryFrom<String> for PlaceId {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::stored(s)
    }
}

impl From<PlaceId> for String {
    fn from(v: PlaceId) -> Self {
        v.0
    }
}

/// A campus id: 1–16 of `[a-z0-9-]` (it shows in URLs and metrics).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[a-z0-9-]{1,16}$", example = "main")]
pub struct CampusId(String);

impl CampusId {
    /// Parses a campus id (whether the map has it is the caller's question).
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if crate::campus::is_campus_id(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "campus must be 1-16 characters of a-z, 0-9 and -",
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CampusId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CampusId {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<CampusId> for String {
    fn from(v: CampusId) -> Self {
        v.0
    }
}
