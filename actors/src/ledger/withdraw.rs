//! Withdrawals, owned by the ledger: a courier's request (limits checked
//! against the book), the operators' review, and the payout's outcome —
//! each written with the posting of the money it moves.

use std::collections::HashSet;
use std::sync::Arc;

use actix::prelude::*;
use time::OffsetDateTime;

use crate::domain::{now_utc, unix_ms, ChinaDay, IdempotencyKey, OpenId, Postings};

use super::*;

/// Who pays an approved withdrawal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payout {
    /// WeChat Pay's 商家转账 (API v3).
    Transfer,
    /// An operator pays by hand and marks it paid.
    Manual,
}

/// The withdrawal rules (`money.*`).
#[derive(Debug, Clone, Copy)]
pub struct WithdrawalRules {
    /// `money.min_withdrawal_fen`.
    pub min_fen: u32,
    /// `money.daily_withdrawal_fen`: the most one courier may ask for per
    /// China day (rejected, failed and cancelled ones do not count).
    pub daily_fen: u32,
    /// `money.withdrawal_review`: operators approve each one first.
    pub review: bool,
    /// `money.payout`.
    pub payout: Payout,
}

/// Why a withdrawal call was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WithdrawalError {
    /// A field breaks a rule (400).
    #[error("{0}")]
    Validation(String),
    /// Not allowed now: more than available, past the daily limit, a
    /// status that does not allow it (409).
    #[error("{0}")]
    Conflict(String),
    /// No such withdrawal (404).
    #[error("no such withdrawal")]
    NotFound,
    /// WeChat Pay's word about a transfer does not match the withdrawal
    /// (amount or payee): counted, logged, nothing posted.
    #[error("transfer anomaly: {0}")]
    Anomaly(String),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<StorageError> for WithdrawalError {
    fn from(e: StorageError) -> Self {
        WithdrawalError::Ledger(e.into())
    }
}

impl From<MailboxError> for WithdrawalError {
    fn from(e: MailboxError) -> Self {
        WithdrawalError::Ledger(e.into())
    }
}

impl From<WithdrawalConflict> for WithdrawalError {
    fn from(e: WithdrawalConflict) -> Self {
        WithdrawalError::Conflict(e.to_string())
    }
}

/// A courier asks to withdraw.
#[derive(Message)]
#[rtype(result = "Result<Withdrawal, WithdrawalError>")]
pub struct RequestWithdrawal {
    /// Who.
    pub courier: OpenId,
    /// How much, in fen.
    pub amount_fen: u32,
    /// The request's Idempotency-Key, if any.
    pub key: Option<IdempotencyKey>,
}

/// A courier's withdrawals, newest first.
#[derive(Message)]
#[rtype(result = "Result<Vec<Withdrawal>, WithdrawalError>")]
pub struct WithdrawalsOf {
    /// Whose.
    pub courier: OpenId,
    /// Older than this one.
    pub before: Option<WithdrawalId>,
    /// Page size.
    pub limit: usize,
}

/// The operators' queue, newest first.
#[derive(Message)]
#[rtype(result = "Result<Vec<Withdrawal>, WithdrawalError>")]
pub struct WithdrawalQueue {
    /// Only this status.
    pub status: Option<WithdrawalStatus>,
    /// Older than this one.
    pub before: Option<WithdrawalId>,
    /// Page size.
    pub limit: usize,
    /// Only these couriers' (an operator limited to campuses); None: all.
    pub couriers: Option<Arc<HashSet<OpenId>>>,
}

/// What an operator decides about a withdrawal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Pay it.
    Approve,
    /// Refuse it, saying why.
    Reject(String),
    /// It was paid by hand (`money.payout = "manual"`).
    PaidByHand,
}

/// An operator decides.
#[derive(Message)]
#[rtype(result = "Result<Withdrawal, WithdrawalError>")]
pub struct Decide {
    /// Which.
    pub id: WithdrawalId,
    /// What.
    pub decision: Decision,
}

impl LedgerActor {
    fn request(&mut self, msg: RequestWithdrawal) -> Result<(Withdrawal, bool), WithdrawalError> {
        let rules = self.rules;
        if let Some(key) = &msg.key {
            if let Some(first) = self.repo.withdrawal_by_key(&msg.courier, key)? {
                return Ok((first, false));
            }
        }
        if msg.amount_fen < rules.min_fen {
            return Err(WithdrawalError::Validation(format!(
                "amount_fen must be at least {} (the smallest withdrawal)",
                rules.min_fen
            )));
        }
        // Earnings the courier was told about are in the inbox: post first.
        self.drain();
        let available = self
            .repo
            .balance(&Account::Available(msg.courier.clone()))?;
        if i64::from(msg.amount_fen) > available {
            return Err(WithdrawalError::Conflict(format!(
                "only {available} fen is available to withdraw"
            )));
        }
        let now = now_utc();
        let today = self.withdrawn_since(&msg.courier, ChinaDay::of(now).start())?;
        if today + u64::from(msg.amount_fen) > u64::from(rules.daily_fen) {
            return Err(WithdrawalError::Conflict(format!(
                "at most {} fen may be withdrawn a day ({today} fen asked for today)",
                rules.daily_fen
            )));
        }
        let withdrawal = Withdrawal::new(msg.courier, msg.amount_fen, rules.review, now);
        let money = MoneyEvent::WithdrawalRequested {
            withdrawal: withdrawal.id.clone(),
            courier: withdrawal.courier.clone(),
            amount: withdrawal.amount_fen,
        };
        let postings = self.postings_of(Some(&money), unix_ms(now))?;
        self.repo
            .save_withdrawal(&withdrawal, &postings, msg.key.as_ref())?;
        metrics::counter!("lastmile_withdrawals_total", "status" => withdrawal.status.as_str())
            .increment(1);
        Ok((withdrawal, true))
    }

    /// The postings of the money a withdrawal moves (none without).
    fn postings_of(
        &self,
        money: Option<&MoneyEvent>,
        at_unix_ms: i64,
    ) -> Result<Postings, StorageError> {
        let mut batch = super::posting::Batch::new(self.repo.as_ref(), &self.ids);
        if let Some(event) = money {
            batch.post(event, 0, at_unix_ms)?;
        }
        Ok(batch.finish())
    }

    /// What a courier asked for since `since`, less what came back.
    fn withdrawn_since(
        &self,
        courier: &OpenId,
        since: OffsetDateTime,
    ) -> Result<u64, StorageError> {
        let mut total = 0u64;
        let mut before = None;
        loop {
            let page = self.repo.withdrawals_of(courier, before.as_ref(), 100)?;
            for w in &page {
                if w.created_at < since {
                    return Ok(total);
                }
                if !w.status.returns_money() {
                    total += u64::from(w.amount_fen);
                }
            }
            match page.last() {
                Some(last) if page.len() == 100 => before = Some(last.id.clone()),
                _ => return Ok(total),
            }
        }
    }

    /// Applies `event` to a stored withdrawal and posts what it moves.
    pub(super) fn change(
        &mut self,
        id: &WithdrawalId,
        event: WithdrawalEvent,
        reason: &str,
    ) -> Result<Withdrawal, WithdrawalError> {
        self.change_with(id, event, reason, None)
    }

    /// [`Self::change`], keeping what WeChat Pay said of its transfer.
    pub(super) fn change_with(
        &mut self,
        id: &WithdrawalId,
        event: WithdrawalEvent,
        reason: &str,
        bill: Option<&crate::wechat::transfer::BillStatus>,
    ) -> Result<Withdrawal, WithdrawalError> {
        let mut withdrawal = self.repo.withdrawal(id)?.ok_or(WithdrawalError::NotFound)?;
        let now = now_utc();
        let to = withdrawal.apply(&event, reason, now)?;
        if let Some(bill) = bill {
            if !bill.transfer_bill_no.is_empty() {
                withdrawal.transfer_bill_no = Some(bill.transfer_bill_no.clone());
            }
            if to == WithdrawalStatus::WaitUserConfirm {
                withdrawal.package_info = bill.package_info.clone();
            }
        }
        let (withdrawal_id, courier, amount) = (
            withdrawal.id.clone(),
            withdrawal.courier.clone(),
            withdrawal.amount_fen,
        );
        let money = if to == WithdrawalStatus::Succeeded {
            Some(MoneyEvent::WithdrawalPaid {
                withdrawal: withdrawal_id,
                courier,
                amount,
            })
        } else if to.returns_money() {
            Some(MoneyEvent::WithdrawalReturned {
                withdrawal: withdrawal_id,
                courier,
                amount,
            })
        } else {
            None
        };
        let postings = self.postings_of(money.as_ref(), unix_ms(now))?;
        self.repo.save_withdrawal(&withdrawal, &postings, None)?;
        metrics::counter!("lastmile_withdrawals_total", "status" => to.as_str()).increment(1);
        Ok(withdrawal)
    }

    fn decide(&mut self, Decide { id, decision }: Decide) -> Result<Withdrawal, WithdrawalError> {
        match decision {
            Decision::Approve => self.change(&id, WithdrawalEvent::Approve, ""),
            Decision::Reject(reason) => self.change(&id, WithdrawalEvent::Reject, &reason),
            Decision::PaidByHand => {
                if self.rules.payout != Payout::Manual {
                    return Err(WithdrawalError::Conflict(
                        "withdrawals are paid by WeChat Pay transfers here (money.payout = transfer)".into(),
                    ));
                }
                self.change(&id, WithdrawalEvent::Paid, "")
            }
        }
    }

    /// Answers once the writes behind the answer are on disk.
    pub(super) fn durably<T: Send + 'static>(
        &self,
        value: Result<T, WithdrawalError>,
    ) -> ResponseFuture<Result<T, WithdrawalError>> {
        let repo = self.repo.clone();
        Box::pin(async move {
            let value = value?;
            repo.commit().await?;
            Ok(value)
        })
    }
}

impl LedgerActor {
    /// Answers `withdrawal` once durable, and sends it to WeChat Pay when
    /// it is to be paid by transfer — after it is on disk, so a crash in
    /// between leaves a `transferring` withdrawal the sweep queries.
    fn durably_then_pay(
        &self,
        result: Result<(Withdrawal, bool), WithdrawalError>,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<Withdrawal, WithdrawalError>> {
        let pay = matches!(&result, Ok((w, true)) if w.status == WithdrawalStatus::Transferring)
            .then(|| ctx.address());
        let repo = self.repo.clone();
        Box::pin(async move {
            let (withdrawal, _) = result?;
            repo.commit().await?;
            if let Some(addr) = pay {
                addr.do_send(PayOut {
                    withdrawal: withdrawal.clone(),
                });
            }
            Ok(withdrawal)
        })
    }
}

/// Send a withdrawal that is durably `transferring` to WeChat Pay.
#[derive(Message)]
#[rtype(result = "()")]
struct PayOut {
    withdrawal: Withdrawal,
}

impl Handler<PayOut> for LedgerActor {
    type Result = ();

    fn handle(&mut self, PayOut { withdrawal }: PayOut, ctx: &mut Self::Context) {
        self.send_transfer(&withdrawal, ctx);
    }
}

impl Handler<RequestWithdrawal> for LedgerActor {
    type Result = ResponseFuture<Result<Withdrawal, WithdrawalError>>;

    fn handle(&mut self, msg: RequestWithdrawal, ctx: &mut Self::Context) -> Self::Result {
        let made = self.request(msg);
        self.durably_then_pay(made, ctx)
    }
}

impl Handler<WithdrawalsOf> for LedgerActor {
    type Result = Result<Vec<Withdrawal>, WithdrawalError>;

    fn handle(&mut self, msg: WithdrawalsOf, _: &mut Self::Context) -> Self::Result {
        Ok(self
            .repo
            .withdrawals_of(&msg.courier, msg.before.as_ref(), msg.limit)?)
    }
}

impl Handler<WithdrawalQueue> for LedgerActor {
    type Result = Result<Vec<Withdrawal>, WithdrawalError>;

    fn handle(&mut self, msg: WithdrawalQueue, _: &mut Self::Context) -> Self::Result {
        let couriers = msg.couriers;
        let keep = |w: &Withdrawal| couriers.as_ref().is_none_or(|c| c.contains(&w.courier));
        Ok(self
            .repo
            .withdrawals(msg.status, msg.before.as_ref(), msg.limit, &keep)?)
    }
}

/// One withdrawal by id.
#[derive(Message)]
#[rtype(result = "Result<Withdrawal, WithdrawalError>")]
pub struct GetWithdrawal(pub WithdrawalId);

impl Handler<GetWithdrawal> for LedgerActor {
    type Result = Result<Withdrawal, WithdrawalError>;

    fn handle(&mut self, GetWithdrawal(id): GetWithdrawal, _: &mut Self::Context) -> Self::Result {
        self.repo.withdrawal(&id)?.ok_or(WithdrawalError::NotFound)
    }
}

impl Handler<Decide> for LedgerActor {
    type Result = ResponseFuture<Result<Withdrawal, WithdrawalError>>;

    fn handle(&mut self, msg: Decide, ctx: &mut Self::Context) -> Self::Result {
        let decided = self.decide(msg).map(|w| (w, true));
        self.durably_then_pay(decided, ctx)
    }
}

impl Ledger {
    /// A courier asks to withdraw `amount_fen` (answered once durable).
    pub async fn request_withdrawal(
        &self,
        courier: OpenId,
        amount_fen: u32,
        key: Option<IdempotencyKey>,
    ) -> Result<Withdrawal, WithdrawalError> {
        self.addr
            .send(RequestWithdrawal {
                courier,
                amount_fen,
                key,
            })
            .await?
    }

    /// A courier's withdrawals, newest first.
    pub async fn withdrawals_of(
        &self,
        courier: OpenId,
        before: Option<WithdrawalId>,
        limit: usize,
    ) -> Result<Vec<Withdrawal>, WithdrawalError> {
        self.addr
            .send(WithdrawalsOf {
                courier,
                before,
                limit,
            })
            .await?
    }

    /// The operators' queue, newest first (only `couriers`' when given).
    pub async fn withdrawal_queue(
        &self,
        status: Option<WithdrawalStatus>,
        before: Option<WithdrawalId>,
        limit: usize,
        couriers: Option<Arc<HashSet<OpenId>>>,
    ) -> Result<Vec<Withdrawal>, WithdrawalError> {
        self.addr
            .send(WithdrawalQueue {
                status,
                before,
                limit,
                couriers,
            })
            .await?
    }

    /// One withdrawal (operators check whose it is before acting on it).
    pub async fn withdrawal(&self, id: WithdrawalId) -> Result<Withdrawal, WithdrawalError> {
        self.addr.send(GetWithdrawal(id)).await?
    }

    /// An operator's decision (answered once durable).
    pub async fn decide(
        &self,
        id: WithdrawalId,
        decision: Decision,
    ) -> Result<Withdrawal, WithdrawalError> {
        self.addr.send(Decide { id, decision }).await?
    }
}
