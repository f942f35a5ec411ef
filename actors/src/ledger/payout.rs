//! Paying withdrawals by WeChat Pay 商家转账: a withdrawal that becomes
//! `transferring` is sent as a transfer whose `out_bill_no` is its id, so
//! WeChat Pay takes it at most once however often it is sent. What WeChat
//! Pay says — in the answer, a callback, or a query — moves it on. After a
//! restart, and every minute, unfinished ones are queried first and sent
//! again only when WeChat Pay never took them.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::wechat::transfer::{
    refused_for_good, BillState, BillStatus, ReportInfo, TransferApi, TransferBill,
};
use crate::wechat::WeChatError;

use super::*;

/// How often unfinished transfers are looked at again.
pub const PAYOUT_SWEEP_EVERY: Duration = Duration::from_secs(60);
/// What the courier sees on the transfer (≤ 32 characters).
const REMARK: &str = "校园跑腿配送收入提现";

/// What paying by transfer needs.
#[derive(Clone)]
pub struct Payouts {
    /// The API (live, or over the simulator).
    pub api: Arc<TransferApi>,
    /// The mini-program's appid (the couriers' openids are under it).
    pub appid: String,
    /// `wechat.transfer_scene_id`.
    pub scene_id: String,
    /// Where WeChat Pay sends the callbacks.
    pub notify_url: String,
}

impl std::fmt::Debug for Payouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payouts")
            .field("appid", &self.appid)
            .finish_non_exhaustive()
    }
}

/// What WeChat Pay said about a withdrawal's transfer.
#[derive(Message)]
#[rtype(result = "Result<Withdrawal, WithdrawalError>")]
pub struct TransferSeen {
    /// The bill as WeChat Pay knows it.
    pub bill: BillStatus,
}

/// A withdrawal's transfer could not be sent or queried (tried again on
/// the next sweep).
#[derive(Message)]
#[rtype(result = "()")]
struct TransferUnsent {
    id: WithdrawalId,
    error: String,
}

impl LedgerActor {
    /// Sends `withdrawal` as a transfer (it is `transferring`).
    pub(super) fn send_transfer(&self, withdrawal: &Withdrawal, ctx: &mut Context<Self>) {
        let Some(payouts) = self.payouts.clone() else {
            return;
        };
        let bill = TransferBill {
            appid: payouts.appid.clone(),
            out_bill_no: withdrawal.id.to_string(),
            transfer_scene_id: payouts.scene_id.clone(),
            openid: withdrawal.courier.to_string(),
            transfer_amount: withdrawal.amount_fen,
            transfer_remark: REMARK.into(),
            notify_url: payouts.notify_url.clone(),
            transfer_scene_report_infos: vec![
                ReportInfo {
                    info_type: "岗位类型".into(),
                    info_content: "校园跑腿配送员".into(),
                },
                ReportInfo {
                    info_type: "报酬说明".into(),
                    info_content: "配送订单收入".into(),
                },
            ],
        };
        let (addr, id) = (ctx.address(), withdrawal.id.clone());
        actix::spawn(async move {
            match payouts.api.transfer(&bill).await {
                Ok(bill) => addr.do_send(TransferSeen { bill }),
                Err(WeChatError::Pay { code, message }) if refused_for_good(&code) => {
                    // WeChat Pay's advice: never give up on a bill before a
                    // query says it does not exist.
                    match payouts.api.query(id.as_str()).await {
                        Ok(Some(bill)) => addr.do_send(TransferSeen { bill }),
                        Ok(None) => addr.do_send(TransferRefused {
                            id,
                            reason: format!("WeChat Pay refused the transfer: {code} {message}"),
                        }),
                        Err(e) => addr.do_send(TransferUnsent {
                            id,
                            error: crate::errors::chain(&e),
                        }),
                    }
                }
                Err(e) => addr.do_send(TransferUnsent {
                    id,
                    error: crate::errors::chain(&e),
                }),
            }
        });
    }

    /// Asks WeChat Pay about `withdrawal` before sending it again: one it
    /// never took is sent (same `out_bill_no`), one it knows moves on.
    pub(super) fn requery(&self, withdrawal: &Withdrawal, ctx: &mut Context<Self>) {
        let Some(payouts) = self.payouts.clone() else {
            return;
        };
        let (addr, w) = (ctx.address(), withdrawal.clone());
        actix::spawn(async move {
            match payouts.api.query(w.id.as_str()).await {
                Ok(Some(bill)) => addr.do_send(TransferSeen { bill }),
                Ok(None) if w.status == WithdrawalStatus::Transferring => {
                    addr.do_send(Resend { withdrawal: w })
                }
                Ok(None) => {}
                Err(e) => addr.do_send(TransferUnsent {
                    id: w.id,
                    error: crate::errors::chain(&e),
                }),
            }
        });
    }

    /// Every unfinished transfer, queried.
    pub(super) fn sweep_transfers(&mut self, ctx: &mut Context<Self>) {
        if self.payouts.is_none() {
            return;
        }
        for status in [
            WithdrawalStatus::Transferring,
            WithdrawalStatus::WaitUserConfirm,
        ] {
            // Every one, through the index by status: neither the newest
            // hundred nor a scan of all withdrawals.
            match self
                .repo
                .withdrawals(Some(status), None, usize::MAX, &|_| true)
            {
                Ok(unfinished) => {
                    for w in &unfinished {
                        self.requery(w, ctx);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %crate::errors::chain(&e), "withdrawals unreadable")
                }
            }
        }
    }

    /// Moves a withdrawal on by what WeChat Pay says of its transfer.
    fn apply_bill(&mut self, bill: BillStatus) -> Result<Withdrawal, WithdrawalError> {
        let id = WithdrawalId::parse(&bill.out_bill_no).map_err(|_| WithdrawalError::NotFound)?;
        let current = self
            .repo
            .withdrawal(&id)?
            .ok_or(WithdrawalError::NotFound)?;
        if let Some(mismatch) = mismatch(&current, &bill) {
            metrics::counter!("lastmile_payment_anomalies_total", "kind" => "transfer_mismatch")
                .increment(1);
            tracing::error!(withdrawal = %id, %mismatch, "transfer does not match its withdrawal; nothing posted");
            return Err(WithdrawalError::Anomaly(mismatch));
        }
        let mut reason = bill.fail_reason.clone().unwrap_or_default();
        let event = match (bill.state, current.status) {
            (
                BillState::WaitUserConfirm | BillState::Transfering,
                WithdrawalStatus::Transferring,
            ) => WithdrawalEvent::Accepted,
            (BillState::Success, s) if !s.is_final() => WithdrawalEvent::Paid,
            (BillState::Fail, s) if !s.is_final() => WithdrawalEvent::Fail,
            (BillState::Cancelled, s) if !s.is_final() => {
                if reason.is_empty() {
                    reason = "the transfer was cancelled before the courier confirmed it".into();
                }
                WithdrawalEvent::Cancel
            }
            // Nothing new (a repeated callback, a state on the way).
            _ => return Ok(current),
        };
        self.change_with(&id, event, &reason, Some(&bill))
    }
}

/// What in WeChat Pay's word about a transfer disagrees with the
/// withdrawal it names (None: nothing it says).
fn mismatch(withdrawal: &Withdrawal, bill: &BillStatus) -> Option<String> {
    if let Some(amount) = bill.transfer_amount.filter(|a| *a != withdrawal.amount_fen) {
        return Some(format!(
            "transfer_amount {amount} for a withdrawal of {} fen",
            withdrawal.amount_fen
        ));
    }
    if bill
        .openid
        .as_deref()
        .is_some_and(|o| o != withdrawal.courier.as_str())
    {
        return Some("the transfer pays another openid".into());
    }
    None
}

/// WeChat Pay refused a transfer for good and holds no bill of it: the
/// withdrawal fails and its money comes back.
#[derive(Message)]
#[rtype(result = "()")]
struct TransferRefused {
    id: WithdrawalId,
    reason: String,
}

impl Handler<TransferRefused> for LedgerActor {
    type Result = ResponseFuture<()>;

    fn handle(
        &mut self,
        TransferRefused { id, reason }: TransferRefused,
        _: &mut Self::Context,
    ) -> Self::Result {
        metrics::counter!("lastmile_transfer_refusals_total").increment(1);
        tracing::error!(withdrawal = %id, %reason, "transfer refused for good; the money goes back");
        let failed = match self.repo.withdrawal(&id) {
            Ok(Some(w)) if w.status == WithdrawalStatus::Transferring => {
                self.change(&id, WithdrawalEvent::Fail, &reason).map(Some)
            }
            Ok(_) => Ok(None),
            Err(e) => Err(e.into()),
        };
        let durable = self.durably(failed);
        Box::pin(async move {
            if let Err(e) = durable.await {
                tracing::warn!(error = %crate::errors::chain(&e), "refused transfer not failed; tried again later");
            }
        })
    }
}

/// Send a withdrawal WeChat Pay never took again.
#[derive(Message)]
#[rtype(result = "()")]
struct Resend {
    withdrawal: Withdrawal,
}

impl Handler<Resend> for LedgerActor {
    type Result = ();

    fn handle(&mut self, Resend { withdrawal }: Resend, ctx: &mut Self::Context) {
        self.send_transfer(&withdrawal, ctx);
    }
}

impl Handler<TransferSeen> for LedgerActor {
    type Result = ResponseFuture<Result<Withdrawal, WithdrawalError>>;

    fn handle(
        &mut self,
        TransferSeen { bill }: TransferSeen,
        _: &mut Self::Context,
    ) -> Self::Result {
        let applied = self.apply_bill(bill);
        if let Err(e) = &applied {
            tracing::warn!(error = %crate::errors::chain(e), "transfer state not applied");
        }
        self.durably(applied)
    }
}

impl Handler<TransferUnsent> for LedgerActor {
    type Result = ();

    fn handle(&mut self, TransferUnsent { id, error }: TransferUnsent, _: &mut Self::Context) {
        metrics::counter!("lastmile_transfer_failures_total").increment(1);
        tracing::warn!(withdrawal = %id, %error, "transfer not sent or queried; tried again later");
    }
}

impl Ledger {
    /// What a verified transfer callback says (answered once durable).
    pub async fn transfer_seen(&self, bill: BillStatus) -> Result<Withdrawal, WithdrawalError> {
        self.addr.send(TransferSeen { bill }).await?
    }
}
