//! Calling a withdrawal off: one nobody has paid yet (`reviewing`, or —
//! by an operator — `transferring` by hand) is cancelled at once; one WeChat Pay holds for
//! the courier's confirmation is cancelled *by WeChat Pay*, and its money
//! comes back only when WeChat Pay says the transfer is cancelled — the
//! courier may have confirmed it a moment before.

use std::time::Duration;

use actix::prelude::*;

use crate::domain::OpenId;
use crate::wechat::WeChatError;

use super::*;

/// How soon a transfer WeChat Pay is still cancelling is asked about again
/// (the callback usually comes first).
const CANCEL_RECHECK: Duration = Duration::from_secs(5);

/// Who calls a withdrawal off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canceller {
    /// The courier, for one of their own.
    Courier(OpenId),
    /// An operator, saying why (the courier sees it).
    Operator(String),
}

impl Canceller {
    fn reason(&self) -> String {
        match self {
            Canceller::Courier(_) => "cancelled by the courier".into(),
            Canceller::Operator(why) => why.clone(),
        }
    }
}

/// Call a withdrawal off.
#[derive(Message)]
#[rtype(result = "Result<Withdrawal, WithdrawalError>")]
pub struct CancelWithdrawal {
    /// Which.
    pub id: WithdrawalId,
    /// Who asks.
    pub by: Canceller,
}

/// Ask WeChat Pay about one withdrawal's transfer again soon.
#[derive(Message)]
#[rtype(result = "()")]
struct RecheckSoon {
    id: WithdrawalId,
}

impl LedgerActor {
    /// The withdrawal `by` may call off (a courier sees only their own).
    fn cancellable(&self, msg: &CancelWithdrawal) -> Result<Withdrawal, WithdrawalError> {
        let withdrawal = self
            .repo
            .withdrawal(&msg.id)?
            .ok_or(WithdrawalError::NotFound)?;
        match &msg.by {
            Canceller::Courier(me) if *me != withdrawal.courier => Err(WithdrawalError::NotFound),
            _ => Ok(withdrawal),
        }
    }

    /// Asks WeChat Pay to cancel a transfer waiting for its courier; the
    /// withdrawal moves by what WeChat Pay answers.
    fn cancel_transfer(
        &self,
        withdrawal: Withdrawal,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<Withdrawal, WithdrawalError>> {
        let Some(payouts) = self.payouts.clone() else {
            return Box::pin(async { Err(WithdrawalError::Conflict("transfers are off".into())) });
        };
        let addr = ctx.address();
        Box::pin(async move {
            let id = withdrawal.id.clone();
            match payouts.api.cancel(id.as_str()).await {
                Ok(bill) => {
                    let seen = addr.send(TransferSeen { bill }).await??;
                    if !seen.status.is_final() {
                        addr.do_send(RecheckSoon { id });
                    }
                    Ok(seen)
                }
                // WeChat Pay refused: the courier confirmed already, or it
                // failed; find out which rather than guess.
                Err(WeChatError::Pay { code, message }) => {
                    addr.do_send(RecheckSoon { id });
                    Err(WithdrawalError::Conflict(format!(
                        "WeChat Pay would not cancel the transfer ({code}: {message})"
                    )))
                }
                Err(e) => Err(WithdrawalError::Ledger(LedgerError::WeChat(
                    crate::errors::chain(&e),
                ))),
            }
        })
    }
}

impl Handler<CancelWithdrawal> for LedgerActor {
    type Result = ResponseFuture<Result<Withdrawal, WithdrawalError>>;

    fn handle(&mut self, msg: CancelWithdrawal, ctx: &mut Self::Context) -> Self::Result {
        let withdrawal = match self.cancellable(&msg) {
            Ok(w) => w,
            Err(e) => return Box::pin(async { Err(e) }),
        };
        match (withdrawal.status, self.rules.payout) {
            (WithdrawalStatus::WaitUserConfirm, _) => self.cancel_transfer(withdrawal, ctx),
            // Its transfer may be on the wire: WeChat Pay cannot cancel a
            // bill it has not answered yet, and money must not come back
            // for a transfer that then goes through.
            (WithdrawalStatus::Transferring, Payout::Transfer) => Box::pin(async {
                Err(WithdrawalError::Conflict(
                    "the transfer is being handed to WeChat Pay; cancel it once it waits for the courier's confirmation".into(),
                ))
            }),
            // An operator may be paying it by hand right now: only they
            // know whether the money left, so only they may call it off.
            (WithdrawalStatus::Transferring, Payout::Manual)
                if matches!(msg.by, Canceller::Courier(_)) =>
            {
                Box::pin(async {
                    Err(WithdrawalError::Conflict(
                        "an operator is paying it by hand; ask them to call it off".into(),
                    ))
                })
            }
            _ => {
                let cancelled = self.change(&msg.id, WithdrawalEvent::Cancel, &msg.by.reason());
                self.durably(cancelled)
            }
        }
    }
}

impl Handler<RecheckSoon> for LedgerActor {
    type Result = ();

    fn handle(&mut self, RecheckSoon { id }: RecheckSoon, ctx: &mut Self::Context) {
        ctx.run_later(CANCEL_RECHECK, move |actor, ctx| {
            match actor.repo.withdrawal(&id) {
                Ok(Some(w)) if !w.status.is_final() => actor.requery(&w, ctx),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %crate::errors::chain(&e), "withdrawal unreadable")
                }
            }
        });
    }
}

impl Ledger {
    /// Calls a withdrawal off (answered once durable); one waiting for
    /// its courier is cancelled through WeChat Pay.
    pub async fn cancel_withdrawal(
        &self,
        id: WithdrawalId,
        by: Canceller,
    ) -> Result<Withdrawal, WithdrawalError> {
        self.addr.send(CancelWithdrawal { id, by }).await?
    }
}
