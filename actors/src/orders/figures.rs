//! A day's figures for the operator console, from that day's orders.
//! Pure: the orders come in, the numbers go out.

use serde::Serialize;

use time::OffsetDateTime;

use crate::domain::{Event, Order, Status};

/// The figures of the orders created on one day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DayFigures {
    /// Orders created.
    pub created: u32,
    /// Of those, paid (whatever happened after).
    pub paid: u32,
    /// Of those, completed.
    pub completed: u32,
    /// Of those, refunded, being refunded, or whose refund failed.
    pub refunded: u32,
    /// What customers paid (fees and tips) for orders not refunded, in fen.
    pub revenue_fen: u64,
    /// The same in yuan, exact (`"12.50"`).
    pub revenue_yuan: String,
    /// Click-to-door (created → delivered) median, seconds; null before
    /// the first delivery.
    pub ctd_p50_seconds: Option<u64>,
    /// Click-to-door 90th percentile, seconds.
    pub ctd_p90_seconds: Option<u64>,
}

/// What the figures need of one order: kept by its shard for the orders
/// of the last days, so the console's figures never read storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// Its status now.
    pub status: Status,
    /// What it costs the customer (fee and tip) in fen.
    pub total_fen: u32,
    /// When it was handed over, if it was.
    pub delivered_at: Option<OffsetDateTime>,
    /// Its campus (None: the default one).
    pub campus: Option<crate::domain::CampusId>,
}

impl Snapshot {
    /// The snapshot of `order` as it is now.
    pub fn of(order: &Order) -> Self {
        Self {
            created_at: order.created_at,
            status: order.status(),
            total_fen: order.total_fen(),
            delivered_at: order
                .history()
                .iter()
                .find(|c| c.event == Some(Event::Deliver))
                .map(|c| c.at),
            campus: order.extras.campus.clone(),
        }
    }
}

/// The figures of `orders` (the day's, by creation time).
pub fn day_figures(orders: &[Snapshot]) -> DayFigures {
    let mut figures = DayFigures::default();
    let mut ctd: Vec<u64> = Vec::new();
    for order in orders {
        figures.created += 1;
        let status = order.status;
        let paid = !matches!(status, Status::AwaitingPayment | Status::Cancelled);
        let refunded = matches!(
            status,
            Status::Refunding | Status::Refunded | Status::RefundFailed
        );
        figures.paid += u32::from(paid);
        figures.completed += u32::from(status == Status::Completed);
        figures.refunded += u32::from(refunded);
        if paid && !refunded {
            figures.revenue_fen += u64::from(order.total_fen);
        }
        if let Some(at) = order.delivered_at {
            ctd.push((at - order.created_at).whole_seconds().max(0) as u64);
        }
    }
    figures.revenue_yuan = format!(
        "{}.{:02}",
        figures.revenue_fen / 100,
        figures.revenue_fen % 100
    );
    ctd.sort_unstable();
    figures.ctd_p50_seconds = nearest_rank(&ctd, 50);
    figures.ctd_p90_seconds = nearest_rank(&ctd, 90);
    figures
}

/// The nearest-rank percentile of sorted values.
fn nearest_rank(sorted: &[u64], percent: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use time::{Duration, OffsetDateTime};

    use super::*;
    use crate::domain::{ChangedBy, Fen, Location, NewOrder, OpenId, OrderId, OrderKind, PlaceId};

    fn order(fee: u32, events: &[Event], delivered_after_min: i64) -> Order {
        let customer = OpenId::parse("oFIG").expect("openid");
        let at = OffsetDateTime::from_unix_timestamp(1_764_000_000).expect("time");
        let place = PlaceId::unchecked("gate");
        let location = Location {
            place_id: place,
            detail: "x".into(),
        };
        let mut order = Order::new(
            OrderId::generate(&customer, at),
            customer,
            NewOrder {
                kind: OrderKind::Takeout,
                pickup: location.clone(),
                dropoff: location,
                pickup_code: String::new(),
                fee_fen: Fen::try_from(fee).expect("fee"),
                tip_fen: crate::domain::Tip::default(),
                note: String::new(),
                ready_at: None,
                contact_phone: None,
                flagged: false,
                campus: crate::domain::CampusId::parse("main").expect("campus id"),
            },
            at,
        );
        for e in events {
            let when = if *e == Event::Deliver {
                at + Duration::minutes(delivered_after_min)
            } else {
                at
            };
            order
                .apply(*e, ChangedBy::Operator(None), when)
                .expect("legal");
        }
        order
    }

    #[test]
    fn counts_revenue_and_click_to_door() {
        use Event::*;
        let done = [PaymentConfirmed, Assign, PickUp, Deliver, Confirm];
        let orders = [
            order(300, &[], 0),
            order(250, &[PaymentConfirmed], 0),
            order(500, &[PaymentConfirmed, Cancel], 0),
            order(100, &done, 10),
            order(100, &done, 20),
            order(100, &done, 40),
            order(
                700,
                &[PaymentConfirmed, Assign, PickUp, Deliver, OperatorRefund],
                30,
            ),
        ];
        let snapshots: Vec<Snapshot> = orders.iter().map(Snapshot::of).collect();
        let f = day_figures(&snapshots);
        assert_eq!((f.created, f.paid, f.completed, f.refunded), (7, 6, 3, 2));
        assert_eq!(f.revenue_fen, 550);
        assert_eq!(f.revenue_yuan, "5.50");
        // Deliveries after 10, 20, 30, 40 minutes.
        assert_eq!(f.ctd_p50_seconds, Some(1200));
        assert_eq!(f.ctd_p90_seconds, Some(2400));
    }

    #[test]
    fn a_day_without_deliveries_has_no_click_to_door() {
        let f = day_figures(&[]);
        assert_eq!(f.revenue_yuan, "0.00");
        assert_eq!((f.ctd_p50_seconds, f.ctd_p90_seconds), (None, None));
    }
}
