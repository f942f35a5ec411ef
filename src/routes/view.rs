//! The order as the API shows it: the stored record plus `eta`, the time
//! its courier is predicted to hand it over (null unless assigned or
//! picked up), which the dispatcher knows from the courier's route.

use lastmile_actors::domain::{Order, Status};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::state::AppState;

/// An order with its predicted hand-over time.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    /// The record.
    #[serde(flatten)]
    pub order: Order,
    /// When it is predicted to be handed over (null unless a courier has it).
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "time::serde::rfc3339::option")]
    pub eta: Option<OffsetDateTime>,
}

impl OrderView {
    /// An order with a known (or no) `eta`.
    pub fn new(order: Order, eta: Option<OffsetDateTime>) -> Self {
        Self { order, eta }
    }

    /// An order, asking the dispatcher for its `eta` when a courier is on it.
    pub async fn of(state: &AppState, order: Order) -> Self {
        let on_the_way = matches!(order.status(), Status::Assigned | Status::PickedUp);
        let eta = match (&order.courier, on_the_way) {
            (Some(courier), true) => {
                state
                    .dispatch
                    .eta_of(order.id.clone(), courier.clone())
                    .await
            }
            _ => None,
        };
        Self { order, eta }
    }
}
