//! A courier's withdrawal: its id (WeChat Pay's `out_bill_no`), its status
//! machine, the record. Pure.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{is_timed_id, timed_id, OpenId, ValidationError};

/// A withdrawal id: `W` and 31 characters of base32hex (time, then
/// random), so ids sort by creation; also the transfer's `out_bill_no`
/// (WeChat Pay allows 5–32 letters and digits), reused by every retry.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^W[0-9A-V]{31}$")]
pub struct WithdrawalId(String);

impl WithdrawalId {
    /// A fresh id made at `now`.
    pub fn generate(now: OffsetDateTime) -> Self {
        Self(timed_id('W', now))
    }

    /// Parses an id received from a client.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if is_timed_id(s, 'W') {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError(
                "withdrawal id must be W and 31 characters of 0-9, A-V".into(),
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WithdrawalId {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<WithdrawalId> for String {
    fn from(id: WithdrawalId) -> Self {
        id.0
    }
}

impl std::fmt::Display for WithdrawalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a withdrawal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalStatus {
    /// Waiting for an operator (`money.withdrawal_review = true`).
    Reviewing,
    /// Being paid: the transfer is asked of WeChat Pay (or, with
    /// `money.payout = "manual"`, an operator pays by hand).
    Transferring,
    /// WeChat Pay took the transfer; the courier confirms it in WeChat
    /// (`package_info` is for `wx.requestMerchantTransfer`).
    WaitUserConfirm,
    /// Paid.
    Succeeded,
    /// An operator refused it; the amount is available again.
    Rejected,
    /// WeChat Pay refused or failed it; the amount is available again.
    Failed,
    /// Cancelled (the courier did not confirm in time, or it was called
    /// off); the amount is available again.
    Cancelled,
}

/// Every status (for parsing and metrics).
pub const WITHDRAWAL_STATUSES: [WithdrawalStatus; 7] = [
    WithdrawalStatus::Reviewing,
    WithdrawalStatus::Transferring,
    WithdrawalStatus::WaitUserConfirm,
    WithdrawalStatus::Succeeded,
    WithdrawalStatus::Rejected,
    WithdrawalStatus::Failed,
    WithdrawalStatus::Cancelled,
];

impl WithdrawalStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reviewing => "reviewing",
            Self::Transferring => "transferring",
            Self::WaitUserConfirm => "wait_user_confirm",
            Self::Succeeded => "succeeded",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        WITHDRAWAL_STATUSES
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                ValidationError(
                    "status must be one of reviewing, transferring, wait_user_confirm, succeeded, rejected, failed, cancelled".into(),
                )
            })
    }

    /// True once nothing more happens to it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Rejected | Self::Failed | Self::Cancelled
        )
    }

    /// True when its amount went back to the courier's available balance.
    pub fn returns_money(self) -> bool {
        matches!(self, Self::Rejected | Self::Failed | Self::Cancelled)
    }
}

/// What happens to a withdrawal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WithdrawalEvent {
    /// An operator approves it.
    Approve,
    /// An operator refuses it.
    Reject,
    /// WeChat Pay took the transfer; the courier is to confirm.
    Accepted,
    /// The money reached the courier (or an operator paid by hand).
    Paid,
    /// WeChat Pay failed or refused it.
    Fail,
    /// It was cancelled.
    Cancel,
}

/// A change the status machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a withdrawal that is {} cannot change that way", .0.as_str())]
pub struct WithdrawalConflict(pub WithdrawalStatus);

impl WithdrawalStatus {
    /// The one place withdrawal transitions are decided.
    pub fn apply(self, event: &WithdrawalEvent) -> Result<Self, WithdrawalConflict> {
        use WithdrawalEvent as E;
        use WithdrawalStatus as S;
        Ok(match (self, event) {
            (S::Reviewing, E::Approve) => S::Transferring,
            (S::Reviewing, E::Reject) => S::Rejected,
            (S::Reviewing, E::Cancel) => S::Cancelled,
            (S::Transferring, E::Accepted) => S::WaitUserConfirm,
            (S::Transferring | S::WaitUserConfirm, E::Paid) => S::Succeeded,
            (S::Transferring | S::WaitUserConfirm, E::Fail) => S::Failed,
            (S::Transferring | S::WaitUserConfirm, E::Cancel) => S::Cancelled,
            (from, _) => return Err(WithdrawalConflict(from)),
        })
    }
}

/// A withdrawal as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Withdrawal {
    /// Its id (the transfer's `out_bill_no`).
    pub id: WithdrawalId,
    /// Whose.
    #[serde(skip)]
    pub courier: OpenId,
    /// How much, in fen.
    pub amount_fen: u32,
    /// Where it is.
    pub status: WithdrawalStatus,
    /// Why it was rejected, failed or cancelled (empty otherwise).
    pub reason: String,
    /// For `wx.requestMerchantTransfer` while `wait_user_confirm`.
    pub package_info: Option<String>,
    /// WeChat Pay's bill number, once it took the transfer.
    #[serde(skip)]
    pub transfer_bill_no: Option<String>,
    /// When it was asked for.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Withdrawal {
    /// A new request: `reviewing` when operators review, else at once
    /// `transferring`.
    pub fn new(courier: OpenId, amount_fen: u32, review: bool, now: OffsetDateTime) -> Self {
        Self {
            id: WithdrawalId::generate(now),
            courier,
            amount_fen,
            status: if review {
                WithdrawalStatus::Reviewing
            } else {
                WithdrawalStatus::Transferring
            },
            reason: String::new(),
            package_info: None,
            transfer_bill_no: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Applies `event` at `now`, keeping `reason` when one is given.
    pub fn apply(
        &mut self,
        event: &WithdrawalEvent,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<WithdrawalStatus, WithdrawalConflict> {
        self.status = self.status.apply(event)?;
        if !reason.is_empty() {
            self.reason = reason.to_owned();
        }
        if self.status != WithdrawalStatus::WaitUserConfirm {
            self.package_info = None;
        }
        self.updated_at = now;
        Ok(self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_out_bill_numbers_that_sort_by_time() {
        let t = OffsetDateTime::from_unix_timestamp(1_764_000_000).expect("time");
        let a = WithdrawalId::generate(t);
        let b = WithdrawalId::generate(t + time::Duration::milliseconds(1));
        assert_eq!(a.as_str().len(), 32);
        assert!(a < b);
        assert_eq!(WithdrawalId::parse(a.as_str()), Ok(a));
        for bad in [
            "",
            "W",
            "X0000000000000000000000000000000",
            "W000000000000000000000000000000z",
        ] {
            assert!(WithdrawalId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_status_machine_returns_money_only_from_failures() {
        use WithdrawalEvent as E;
        use WithdrawalStatus as S;
        assert_eq!(S::Reviewing.apply(&E::Approve), Ok(S::Transferring));
        assert_eq!(S::Reviewing.apply(&E::Reject), Ok(S::Rejected));
        assert_eq!(S::Transferring.apply(&E::Accepted), Ok(S::WaitUserConfirm));
        assert_eq!(S::WaitUserConfirm.apply(&E::Paid), Ok(S::Succeeded));
        assert_eq!(S::WaitUserConfirm.apply(&E::Cancel), Ok(S::Cancelled));
        assert_eq!(S::Reviewing.apply(&E::Cancel), Ok(S::Cancelled));
        assert!(S::Succeeded.apply(&E::Cancel).is_err(), "paid is paid");
        assert_eq!(S::Transferring.apply(&E::Fail), Ok(S::Failed));
        assert!(
            S::Reviewing.apply(&E::Paid).is_err(),
            "never paid unreviewed"
        );
        assert!(S::Succeeded.apply(&E::Fail).is_err(), "paid stays paid");
        assert!(S::Rejected.apply(&E::Approve).is_err());
        assert!(S::Rejected.returns_money() && !S::Succeeded.returns_money());
        for s in WITHDRAWAL_STATUSES {
            assert_eq!(S::parse(s.as_str()), Ok(s));
        }
    }
}
