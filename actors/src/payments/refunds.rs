//! Refunds: sent until WeChat Pay takes them, one at a time per order.

use super::*;

impl PaymentsActor {
    /// Sends a refunding order's money back, retrying until WeChat Pay
    /// takes the request; one at a time per order.
    pub(super) fn refund_due(
        &mut self,
        RefundDue {
            id,
            total_fen,
            refund_fen,
        }: RefundDue,
        ctx: &mut Context<Self>,
    ) {
        if self.refunding.contains(&id) {
            return;
        }
        self.refunding.insert(id.clone());
        let request = RefundRequest {
            out_trade_no: id.to_string(),
            out_refund_no: format!("R{}", id.as_str()),
            total_fee: total_fen,
            refund_fee: refund_fen,
            notify_url: self.notify_url(REFUND_NOTIFY_PATH),
        };
        let (wechat, orders, addr, store) = (
            self.wechat.clone(),
            self.orders.clone(),
            ctx.address(),
            self.store.clone(),
        );
        let shards = orders.clone();
        actix::spawn(async move {
            let still_refunding = || async {
                matches!(shards.peek(&id).await, Ok(Some(o)) if o.status() == Status::Refunding)
            };
            let mut delay = REFUND_RETRY;
            loop {
                let requested = async {
                    addr.send(RecordRefund { id: id.clone() }).await??;
                    store.commit().await?;
                    wechat
                        .pay()
                        .refund(&request)
                        .await
                        .map_err(PaymentError::from)
                };
                match requested.await {
                    Ok(()) => break,
                    Err(e) => {
                        // The money must go back: keep trying, more slowly.
                        tracing::warn!(order = %id, error = %e, retry_in = ?delay, "refund request failed");
                        actix_rt::time::sleep(delay).await;
                        delay = (delay * 2).min(REFUND_RETRY_CAP);
                        if !still_refunding().await {
                            addr.do_send(RefundSettled { id });
                            return;
                        }
                    }
                }
            }
            metrics::counter!("lastmile_payments_total", "outcome" => "refund_requested")
                .increment(1);
            // The notify normally settles it; if it never comes, ask.
            actix_rt::time::sleep(REFUND_CHECK_AFTER).await;
            if still_refunding().await {
                if let Ok(RefundState::Success) = wechat.pay().refund_query(id.as_str()).await {
                    let _ = orders.confirm_refund(id.clone()).await;
                }
            }
            // Still refunding later? The owning shard asks again.
            addr.do_send(RefundSettled { id });
        });
    }
}

impl Handler<RefundSettled> for PaymentsActor {
    type Result = ();

    fn handle(&mut self, RefundSettled { id }: RefundSettled, _: &mut Self::Context) {
        self.refunding.remove(&id);
    }
}
