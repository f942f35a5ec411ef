//! Unpaid orders past their deadline: asked about (and closed) at WeChat
//! Pay before they are cancelled; paid ones' prepay ids pooled.

use super::*;

impl Handler<OrderEvent> for PaymentsActor {
    type Result = ();

    fn handle(&mut self, event: OrderEvent, ctx: &mut Self::Context) {
        match event {
            OrderEvent::PaymentDue(due) => self.payment_due(due, ctx),
            OrderEvent::RefundDue(due) => self.refund_due(due, ctx),
            OrderEvent::Waiting(_)
            | OrderEvent::Taken(..)
            | OrderEvent::Task(_)
            | OrderEvent::OutboxWritten
            | OrderEvent::MoneyWritten => {}
        }
    }
}

impl PaymentsActor {
    /// An unpaid order's deadline passed: a prepaid one is asked about
    /// (and closed) at WeChat Pay before it is cancelled.
    pub(super) fn payment_due(
        &mut self,
        PaymentDue { id, total_fen }: PaymentDue,
        ctx: &mut Context<Self>,
    ) {
        let has_prepay = match self.store.get_payment(&id) {
            Ok(record) => record.is_some_and(|r| r.prepay_id.is_some()),
            Err(e) => {
                // Unknown is not "no prepay": cancelling without asking
                // WeChat could drop a payment. The shard asks again.
                tracing::warn!(order = %id, error = %e, "payment session unreadable; will retry");
                return;
            }
        };
        let (wechat, orders, addr) = (self.wechat.clone(), self.orders.clone(), ctx.address());
        let (formids, store) = (self.formids.clone(), self.store.clone());
        actix::spawn(async move {
            let unpaid = Unpaid {
                id: id.clone(),
                total_fen,
                has_prepay,
            };
            let settled = resolve_unpaid(wechat, orders, addr, unpaid).await;
            if let Ok(Some(outcome)) = &settled {
                pool_prepay(&formids, store.as_ref(), outcome).await;
            }
            if let Err(e) = settled {
                // The shard asks again later.
                tracing::warn!(order = %id, error = %e, "could not settle an unpaid order yet");
            }
        });
    }
}

/// An unpaid order past its deadline.
struct Unpaid {
    id: OrderId,
    total_fen: u32,
    has_prepay: bool,
}

/// Timeout of an unpaid order: ask WeChat Pay first (a notify may have been
/// lost), close the trade, and cancel only when it is closed unpaid.
/// Answers the payment outcome when the order turned out paid.
async fn resolve_unpaid(
    wechat: Arc<dyn WeChat>,
    orders: Orders,
    payments: Addr<PaymentsActor>,
    Unpaid {
        id,
        total_fen,
        has_prepay,
    }: Unpaid,
) -> Result<Option<PaymentOutcome>, PaymentError> {
    if !has_prepay {
        orders.cancel_unpaid(id).await?;
        return Ok(None);
    }
    let wx = PaymentError::from;
    // An orderquery "paid" is checked like a notify before it counts.
    let paid = |state: TradeState| async {
        let TradeState::Success {
            transaction_id,
            total_fee,
        } = state
        else {
            return Err(PaymentError::Inconsistent(format!(
                "closeorder said paid, orderquery said {state:?}"
            )));
        };
        if transaction_id.is_empty() || total_fee != total_fen {
            anomaly(
                "query_mismatch",
                &id,
                &format!(
                    "total_fee {total_fee}, transaction_id {}",
                    excerpt(&transaction_id)
                ),
            );
            return Err(PaymentError::Inconsistent(
                "orderquery answer does not match the order".into(),
            ));
        }
        let check = payments
            .send(RecordTransaction {
                id: id.clone(),
                transaction_id: transaction_id.clone(),
            })
            .await??;
        if let TransactionCheck::Conflicting(first) = check {
            transaction_conflict(&id, &first, &transaction_id);
        }
        let outcome = orders.confirm_payment(id.clone()).await?;
        metrics::counter!("lastmile_payments_total", "outcome" => "found_by_query").increment(1);
        Ok::<Option<PaymentOutcome>, PaymentError>(Some(outcome))
    };
    match wechat.pay().order_query(id.as_str()).await.map_err(wx)? {
        state @ TradeState::Success { .. } => return paid(state).await,
        TradeState::Unknown(state) => {
            tracing::warn!(order = %id, state = %excerpt(&state), "unknown trade state; closing")
        }
        TradeState::NotPaid | TradeState::Closed | TradeState::Refunded | TradeState::NotFound => {}
    }
    match wechat.pay().close_order(id.as_str()).await.map_err(wx)? {
        CloseOutcome::Closed => {
            orders.cancel_unpaid(id.clone()).await?;
            metrics::counter!("lastmile_payments_total", "outcome" => "timed_out").increment(1);
            Ok(None)
        }
        CloseOutcome::AlreadyPaid => {
            paid(wechat.pay().order_query(id.as_str()).await.map_err(wx)?).await
        }
    }
}
