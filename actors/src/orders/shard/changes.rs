//! The changes callers ask a shard for: create, pay, cancel, refund,
//! assign, the courier's steps, disputes, notes.

use super::*;

impl OrderShard {
    pub(super) fn create(
        &mut self,
        CreateOrder {
            customer,
            order,
            key,
        }: CreateOrder,
    ) -> Result<Order, OrderError> {
        let now = now_utc();
        if let Some(key) = &key {
            // The customer's shard is the only writer of their keys, so
            // check-then-insert cannot race.
            if let Some(id) =
                self.store
                    .idempotent_order(&customer, key, idempotency_cutoff(now))?
            {
                return self.load(&id)?.ok_or(OrderError::NotFound);
            }
        }
        let max = self.config.max_unpaid;
        if self.unpaid.get(&customer).copied().unwrap_or(0) >= max {
            return Err(OrderError::TooManyUnpaid(max));
        }
        let kind = order.kind.as_str();
        let order = Order::new(OrderId::generate(&customer, now), customer, order, now);
        self.store.insert_new_order(&order, key.as_ref())?;
        metrics::counter!("lastmile_orders_created_total", "kind" => kind).increment(1);
        self.track(order.clone());
        Ok(order)
    }

    /// Applies `event` to a stored copy, persists it, and only then updates memory.
    pub(super) fn transition(
        &mut self,
        id: &OrderId,
        event: Event,
        by: ChangedBy,
    ) -> Result<Order, OrderError> {
        self.transition_noted(id, event, by, String::new())
    }

    /// [`Self::transition`] with the reason kept in the history.
    pub(super) fn transition_noted(
        &mut self,
        id: &OrderId,
        event: Event,
        by: ChangedBy,
        note: String,
    ) -> Result<Order, OrderError> {
        let mut order = self.load(id)?.ok_or(OrderError::NotFound)?;
        let was_terminal = order.status().is_terminal();
        let to = order.apply(event, by, now_utc())?;
        if !note.is_empty() {
            order.explain_last(note);
        }
        self.record_change(&order, was_terminal, event, to)?;
        Ok(order)
    }

    /// Writes an order that `event` just took to `to`, with the message
    /// and money the change brings, counts it and tracks the result.
    pub(super) fn record_change(
        &mut self,
        order: &Order,
        was_terminal: bool,
        event: Event,
        to: Status,
    ) -> Result<(), OrderError> {
        self.save(order, was_terminal, MoneyEvent::of_change(order, event))?;
        metrics::counter!("lastmile_order_transitions_total", "to" => to.as_str()).increment(1);
        self.track(order.clone());
        Ok(())
    }

    pub(super) fn cancel(
        &mut self,
        CancelOrder { id, by }: CancelOrder,
    ) -> Result<Order, OrderError> {
        let order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        if !order.visible_to(&by) {
            return Err(OrderError::NotFound);
        }
        if order.customer != by {
            return Err(OrderError::Forbidden(
                "only the customer may cancel an order",
            ));
        }
        let order = self.transition(&id, Event::Cancel, ChangedBy::Customer)?;
        if order.status() == Status::Refunding {
            self.refund_started(&order);
        }
        Ok(order)
    }

    pub(super) fn confirm_payment(&mut self, id: &OrderId) -> Result<PaymentOutcome, OrderError> {
        let order = self.load(id)?.ok_or(OrderError::NotFound)?;
        match order.status() {
            Status::AwaitingPayment => Ok(PaymentOutcome::Paid(self.transition(
                id,
                Event::PaymentConfirmed,
                ChangedBy::WeChatPay,
            )?)),
            Status::Cancelled => {
                let order = self.transition(id, Event::PaymentConfirmed, ChangedBy::WeChatPay)?;
                self.refund_due(&order);
                Ok(PaymentOutcome::RefundNeeded(order))
            }
            _ => Ok(PaymentOutcome::AlreadyPaid(order)),
        }
    }

    pub(super) fn cancel_unpaid(&mut self, id: &OrderId) -> Result<Order, OrderError> {
        let order = self.load(id)?.ok_or(OrderError::NotFound)?;
        if order.status() == Status::AwaitingPayment {
            self.transition(id, Event::Cancel, ChangedBy::Timer)
        } else {
            Ok(order)
        }
    }

    pub(super) fn confirm_refund(&mut self, id: &OrderId) -> Result<Order, OrderError> {
        let order = self.load(id)?.ok_or(OrderError::NotFound)?;
        if order.status() == Status::Refunding {
            let event = if order.refund_is_partial() {
                Event::PartRefundConfirmed
            } else {
                Event::RefundConfirmed
            };
            self.transition(id, event, ChangedBy::WeChatPay)
        } else {
            Ok(order)
        }
    }

    pub(super) fn assign(
        &mut self,
        AssignCourier {
            id,
            courier,
            by,
            take_over,
            campus,
        }: AssignCourier,
    ) -> Result<Order, OrderError> {
        let mut order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        if !campus.holds(&order) {
            return Err(OrderError::Conflict(
                "the order is on another campus than the courier works on",
            ));
        }
        if order.customer == courier {
            return Err(OrderError::Forbidden(
                "a courier never takes their own order",
            ));
        }
        let now = now_utc();
        if take_over && order.status() == Status::Assigned {
            if order.courier.as_ref() == Some(&courier) {
                return Err(OrderError::Transition(crate::domain::TransitionError {
                    from: Status::Assigned,
                    event: crate::domain::EventName(Event::Assign),
                }));
            }
            order.unassign(by.clone(), now)?;
        }
        order.assign(courier, by, now)?;
        self.save(&order, false, Vec::new())?;
        metrics::counter!("lastmile_order_transitions_total", "to" => "assigned").increment(1);
        self.track(order.clone());
        Ok(order)
    }

    pub(super) fn unassign(
        &mut self,
        UnassignOrder {
            id,
            courier,
            by,
            note,
        }: UnassignOrder,
    ) -> Result<Order, OrderError> {
        let mut order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        if order.courier.as_ref() != Some(&courier) {
            return Err(OrderError::Forbidden("the order is not this courier's"));
        }
        order.unassign(by, now_utc())?;
        if !note.is_empty() {
            order.explain_last(note);
        }
        self.store.update_order(&order, false)?;
        metrics::counter!("lastmile_order_transitions_total", "to" => "paid").increment(1);
        self.track(order.clone());
        Ok(order)
    }

    pub(super) fn take_step(
        &mut self,
        TakeStep { id, by, step }: TakeStep,
    ) -> Result<Order, OrderError> {
        let order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        if !order.visible_to(&by) {
            return Err(OrderError::NotFound);
        }
        let (allowed, event, actor) = match step {
            Step::PickUp => (
                order.courier.as_ref() == Some(&by),
                Event::PickUp,
                ChangedBy::Courier(by.clone()),
            ),
            Step::Deliver(_) => (
                order.courier.as_ref() == Some(&by),
                Event::Deliver,
                ChangedBy::Courier(by.clone()),
            ),
            Step::Confirm => (order.customer == by, Event::Confirm, ChangedBy::Customer),
        };
        if !allowed {
            return Err(OrderError::Forbidden(match step {
                Step::Confirm => "only the customer may confirm receipt",
                _ => "only the assigned courier may do this",
            }));
        }
        match step {
            Step::Deliver(photo) => self.deliver(order, photo, actor),
            _ => self.transition(&id, event, actor),
        }
    }

    /// The hand-over, with its photo when one was taken (required when
    /// `orders.delivery_photo = "required"`).
    pub(super) fn deliver(
        &mut self,
        mut order: Order,
        photo: Option<crate::domain::UploadId>,
        by: ChangedBy,
    ) -> Result<Order, OrderError> {
        if photo.is_none() && self.config.delivery_photo_required {
            return Err(OrderError::Invalid(crate::domain::ValidationError(
                "photo is required: this campus asks for a photo of every hand-over".into(),
            )));
        }
        let to = order.apply(Event::Deliver, by, now_utc())?;
        order.extras.delivery_photo = photo;
        self.record_change(&order, false, Event::Deliver, to)?;
        Ok(order)
    }

    pub(super) fn open_dispute(
        &mut self,
        OpenDispute { id, by, dispute }: OpenDispute,
    ) -> Result<Order, OrderError> {
        let mut order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        if !order.visible_to(&by) {
            return Err(OrderError::NotFound);
        }
        if order.customer != by {
            return Err(OrderError::Forbidden(
                "only the customer may dispute an order",
            ));
        }
        if order.extras.dispute.is_some() {
            return Err(OrderError::Conflict("this order was disputed already"));
        }
        let to = order.open_dispute(dispute, now_utc())?;
        self.record_change(&order, false, Event::Dispute, to)?;
        metrics::counter!("lastmile_disputes_total", "outcome" => "opened").increment(1);
        Ok(order)
    }

    /// Settles a dispute; the shard orders two operators' answers, so the
    /// second finds it resolved (409).
    pub(super) fn resolve_dispute(
        &mut self,
        ResolveDispute {
            id,
            refund_fen,
            note,
            by,
        }: ResolveDispute,
    ) -> Result<Order, OrderError> {
        let mut order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        let to = order
            .resolve(refund_fen, note, by, now_utc())
            .map_err(|e| match e {
                crate::domain::ResolveError::Invalid(v) => OrderError::Invalid(v),
                crate::domain::ResolveError::Transition(t) => OrderError::Transition(t),
            })?;
        let event = if to == Status::Refunding {
            Event::ResolveRefund
        } else {
            Event::Resolve
        };
        self.record_change(&order, false, event, to)?;
        let outcome = match refund_fen {
            0 => "no_refund",
            r if r < order.total_fen() => "part_refund",
            _ => "full_refund",
        };
        metrics::counter!("lastmile_disputes_total", "outcome" => outcome).increment(1);
        if to == Status::Refunding {
            self.refund_due(&order);
        }
        Ok(order)
    }

    /// Marks when WeChat took the delivery (once; no message, no money).
    pub(super) fn shipping_reported(
        &mut self,
        ShippingReported { id, at }: ShippingReported,
    ) -> Result<(), OrderError> {
        let Some(mut order) = self.load(&id)? else {
            return Ok(());
        };
        if order.extras.shipping_reported_at.is_some() {
            return Ok(());
        }
        order.extras.shipping_reported_at = Some(at);
        let terminal = order.status().is_terminal();
        self.store.update_order_with(&order, terminal, &[], &[])?;
        if !terminal {
            self.track(order);
        }
        Ok(())
    }

    pub(super) fn operator_refund(
        &mut self,
        OperatorRefund { id, by, note }: OperatorRefund,
    ) -> Result<Order, OrderError> {
        let order = self.transition_noted(&id, Event::OperatorRefund, by, note)?;
        self.refund_started(&order);
        Ok(order)
    }

    /// A refund WeChat Pay gave up on: it waits for an operator, and the
    /// shard stops asking for it (only `refunding` orders are re-sent).
    pub(super) fn fail_refund(
        &mut self,
        FailRefund { id, note }: FailRefund,
    ) -> Result<Order, OrderError> {
        let order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        if order.status() != Status::Refunding {
            return Ok(order);
        }
        self.transition_noted(&id, Event::RefundFailed, ChangedBy::WeChatPay, note)
    }

    pub(super) fn settle_refund(
        &mut self,
        SettleRefund { id, by, note }: SettleRefund,
    ) -> Result<Order, OrderError> {
        let partial = self.load(&id)?.is_some_and(|o| o.refund_is_partial());
        let event = if partial {
            Event::PartRefundSettled
        } else {
            Event::RefundSettled
        };
        self.transition_noted(&id, event, by, note)
    }

    pub(super) fn add_note(
        &mut self,
        AddNote { id, by, note }: AddNote,
    ) -> Result<Order, OrderError> {
        let mut order = self.load(&id)?.ok_or(OrderError::NotFound)?;
        let terminal = order.status().is_terminal();
        order.note(by, note, now_utc());
        self.store.update_order(&order, terminal)?;
        self.track(order.clone());
        Ok(order)
    }
}
