//! The ledger as stored: inbox events, postings, statement lines,
//! withdrawals and reconciliations.

use super::*;

/// A money event waiting in the ledger's inbox (tag `RECORD_V1`; the
/// variant index is the disk value).
#[derive(Serialize, Deserialize)]
pub(in crate::storage) enum MoneyEventV1 {
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
pub(in crate::storage) struct PostingV1 {
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
pub(in crate::storage) struct EntryV1 {
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
pub(in crate::storage) struct WithdrawalV1 {
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
            created_at: time_of_ms(r.created_at_unix_ms)?,
            updated_at: time_of_ms(r.updated_at_unix_ms)?,
        })
    }
}

/// A mismatch as stored (kind: 0 missing in the ledger, 1 missing in the
/// bill, 2 amounts differ).
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct MismatchV1 {
    kind: u8,
    what: String,
    order_id: String,
    bill_fen: Option<u64>,
    ledger_fen: Option<u64>,
}

/// A day's reconciliation as stored (tag `RECORD_V1`).
#[derive(Serialize, Deserialize)]
pub(in crate::storage) struct ReconciliationV1 {
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
            date: self.date.to_string(),
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
                    what: m.what.as_str().to_owned(),
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
                    what: BillLine::parse(&m.what).ok_or(Unreadable)?,
                    order_id: m.order_id,
                    bill_fen: m.bill_fen,
                    ledger_fen: m.ledger_fen,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Reconciliation {
            date: ChinaDay::parse(&r.date).map_err(|_| Unreadable)?,
            ran_at_unix_ms: r.ran_at_unix_ms,
            bill_lines: r.bill_lines,
            ledger_lines: r.ledger_lines,
            matched: r.matched,
            mismatches,
        })
    }
}
