//! The changes time makes: unpaid orders expire, delivered ones confirm
//! themselves, untaken ones are told and refunded; refunds asked again.

use super::*;

impl OrderShard {
    /// Completes delivered orders nobody confirmed within `orders.auto_confirm`.
    pub(super) fn auto_confirm(&mut self) -> usize {
        let now = now_utc();
        let mut done = 0;
        while let Some((deadline, id)) = self.confirm_deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            self.confirm_deadlines.pop_first();
            match self.transition(&id, Event::Confirm, ChangedBy::Timer) {
                Ok(_) => done += 1,
                Err(e) => tracing::debug!(order = %id, error = %e, "auto-confirm skipped"),
            }
        }
        done
    }

    /// Tells the customers of paid orders nobody took that they wait, once,
    /// and refunds those still untaken after `untaken_refund_after`.
    pub(super) fn handle_untaken(&mut self) -> usize {
        let now = now_utc();
        let mut acted = 0;
        while let Some((deadline, id)) = self.untaken_deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            self.untaken_deadlines.pop_first();
            let Some(order) = self.active.get(&id).map(|o| Order::clone(o)) else {
                continue;
            };
            if order.status() != Status::Paid {
                continue;
            }
            let paid = order.paid_at().unwrap_or(order.updated_at);
            let done = if now >= paid + self.config.untaken_refund_after {
                self.refund_untaken(&id)
            } else {
                self.notice_untaken(order)
            };
            match done {
                Ok(()) => acted += 1,
                Err(e) => {
                    tracing::warn!(order = %id, error = %e, "untaken order not handled; retrying");
                    self.untaken_deadlines.insert((now + PAYMENT_DUE_RETRY, id));
                }
            }
        }
        acted
    }

    /// Writes the customer's "nobody has taken it yet" message with the
    /// mark that it was sent, in one write.
    pub(super) fn notice_untaken(&mut self, mut order: Order) -> Result<(), OrderError> {
        order.extras.untaken_noticed = true;
        let message = self.outbox_entry(&order, MessageKind::Untaken);
        self.store
            .update_order_with(&order, false, &[message], &[])?;
        self.publish_committed(OrderEvent::OutboxWritten);
        metrics::counter!("lastmile_untaken_orders_total", "action" => "notice").increment(1);
        self.track(order);
        Ok(())
    }

    /// Nobody took it in time: the money goes back.
    pub(super) fn refund_untaken(&mut self, id: &OrderId) -> Result<(), OrderError> {
        let hours = self.config.untaken_refund_after.as_secs_f64() / 3600.0;
        let note = format!("nobody took it within {hours:.1} h");
        let order = self.transition_noted(id, Event::Cancel, ChangedBy::Timer, note)?;
        metrics::counter!("lastmile_untaken_orders_total", "action" => "refund").increment(1);
        self.refund_started(&order);
        Ok(())
    }

    /// Restarts refunds a crash or restart interrupted.
    pub(super) fn resume_refunds(&self) {
        for order in self.active.values() {
            if order.status() == Status::Refunding {
                self.refund_due(order);
            }
        }
    }

    /// Hands every unpaid order whose payment deadline has passed to the
    /// payments actor: WeChat Pay decides (it queries, closes, and answers
    /// with `ConfirmPayment` or `CancelUnpaid`); asked again until settled.
    pub(super) fn expire_unpaid(&mut self) -> usize {
        let now = now_utc();
        let mut expired = 0;
        while let Some((deadline, id)) = self.payment_deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            self.payment_deadlines.pop_first();
            let Some(total_fen) = self
                .active
                .get(&id)
                .filter(|o| o.status() == Status::AwaitingPayment)
                .map(|o| o.total_fen())
            else {
                continue;
            };
            self.publish(OrderEvent::PaymentDue(PaymentDue {
                id: id.clone(),
                total_fen,
            }));
            self.payment_deadlines.insert((now + PAYMENT_DUE_RETRY, id));
            expired += 1;
        }
        expired
    }

    /// Forgets this shard's customers' idempotency keys older than a day
    /// (off the shard's thread: it scans the whole tree).
    pub(super) fn sweep_idempotency(&self) {
        let (store, shard) = (self.store.clone(), self.shard);
        let since_ms = idempotency_cutoff(now_utc());
        actix::spawn(async move {
            let swept =
                tokio::task::spawn_blocking(move || store.prune_idempotency(since_ms, shard)).await;
            match swept {
                Ok(Ok(n)) if n > 0 => {
                    tracing::info!(
                        shard = shard.index,
                        forgotten = n,
                        "idempotency keys expired"
                    )
                }
                Ok(Err(e)) => {
                    tracing::warn!(shard = shard.index, error = %e, "idempotency sweep failed")
                }
                _ => {}
            }
        });
    }
}
