//! Operators: their names, roles and what each role may do. Pure.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::*;

/// An operator's name: 1–32 of `[A-Za-z0-9_.-]` (it appears in histories,
/// metrics labels and URLs).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[A-Za-z0-9_.-]{1,32}$")]
pub struct OperatorName(String);

impl OperatorName {
    /// The name operators sign in as with `admin.token`.
    pub const BOOTSTRAP: &'static str = "admin";

    /// Parses a name.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError(
                "name must be 1-32 characters of A-Z, a-z, 0-9, _ . -".into(),
            ))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype!(OperatorName);

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// Also reviews and suspends couriers, reassigns, forces offline, blocks customers.
    Dispatcher,
    /// Also refunds, resolves disputes and handles withdrawals.
    Finance,
    /// Does everything, operators included.
    Admin,
}

/// A kind of admin action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    /// Read the console and the admin API.
    Read,
    /// Couriers, assignments, customers.
    Dispatch,
    /// Refunds, disputes, withdrawals, reconciliation.
    Money,
    /// Operators themselves.
    Manage,
}

impl Role {
    /// Parses `viewer`, `dispatcher`, `finance` or `admin`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "viewer" => Role::Viewer,
            "dispatcher" => Role::Dispatcher,
            "finance" => Role::Finance,
            "admin" => Role::Admin,
            _ => return None,
        })
    }

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Dispatcher => "dispatcher",
            Role::Finance => "finance",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may use `power`.
    pub fn may(self, power: Power) -> bool {
        matches!(
            (self, power),
            (Role::Admin, _)
                | (_, Power::Read)
                | (Role::Dispatcher, Power::Dispatch)
                | (Role::Finance, Power::Money)
        )
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an operator limited to `limits` (empty: every campus) may see,
/// add and revoke one limited to `other`: an operator without a limit
/// manages everyone; a limited one only operators limited within its own
/// campuses, never one without a limit (that would be an escalation).
pub fn manages(limits: &[String], other: &[String]) -> bool {
    limits.is_empty() || (!other.is_empty() && other.iter().all(|c| limits.contains(c)))
}

/// A stored operator: the token is kept only as its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRecord {
    /// Their name.
    pub name: OperatorName,
    /// Their role.
    pub role: Role,
    /// The campuses they are limited to (empty: all).
    pub campuses: Vec<String>,
    /// SHA-256 of their bearer token.
    pub token_hash: [u8; 32],
    /// When they were added.
    pub created_at: OffsetDateTime,
    /// When their token was revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_has_its_powers_and_no_other() {
        use Power::*;
        let table = [
            (Role::Viewer, [true, false, false, false]),
            (Role::Dispatcher, [true, true, false, false]),
            (Role::Finance, [true, false, true, false]),
            (Role::Admin, [true, true, true, true]),
        ];
        for (role, expected) in table {
            let got = [Read, Dispatch, Money, Manage].map(|p| role.may(p));
            assert_eq!(got, expected, "{role}");
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn a_limited_operator_manages_only_operators_within_its_campuses() {
        let v = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(manages(&[], &[]));
        assert!(manages(&[], &v(&["east"])));
        assert!(manages(&v(&["main"]), &v(&["main"])));
        assert!(manages(&v(&["main", "east"]), &v(&["east"])));
        assert!(!manages(&v(&["main"]), &[]), "never one without a limit");
        assert!(!manages(&v(&["main"]), &v(&["east"])));
        assert!(!manages(&v(&["main"]), &v(&["main", "east"])));
    }

    #[test]
    fn names_are_short_and_plain() {
        assert!(OperatorName::parse("li.lei_2").is_ok());
        for bad in ["", "a b", "名字", &"x".repeat(33), "a/b"] {
            assert!(OperatorName::parse(bad).is_err(), "{bad}");
        }
    }
}
