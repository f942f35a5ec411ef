//! The order as the API shows it: the stored record plus what depends on
//! who is looking. `eta` is when its courier is predicted to hand it over
//! (null unless assigned or picked up), which the dispatcher knows from the
//! courier's route. Contact details are only ever shown between the
//! customer and the assigned courier — never to operators, never to a
//! courier who no longer has the order.

use lastmile_actors::domain::{
    Dispute, DisputeReason, OpenId, Order, PhoneNumber, Resolution, Status, UploadId,
};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::state::AppState;

/// Who is looking at an order.
#[derive(Debug, Clone, Copy)]
pub enum Viewer<'a> {
    /// The order's own customer (a route that only answers them).
    Customer,
    /// A signed-in user: the customer or the assigned courier.
    User(&'a OpenId),
    /// A signed-in operator: everything but the contact details.
    Operator,
}

/// An order with its predicted hand-over time and what its viewer may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    /// The record.
    #[serde(flatten)]
    pub order: Order,
    /// When it is predicted to be handed over (null unless a courier has it).
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "time::serde::rfc3339::option")]
    pub eta: Option<OffsetDateTime>,
    /// The customer's phone: shown to the customer and the assigned courier only.
    #[schema(value_type = Option<String>)]
    pub contact_phone: Option<PhoneNumber>,
    /// The assigned courier's name and phone: shown to the customer only,
    /// from assignment until the order completes.
    pub courier_contact: Option<CourierContact>,
    /// The courier's photo of the hand-over (an upload url), if one was taken.
    pub delivery_photo: Option<String>,
    /// The customer's dispute, once opened.
    pub dispute: Option<DisputeView>,
    /// The campus it is on.
    pub campus: String,
}

/// A courier's name and phone.
#[derive(Debug, Serialize, ToSchema)]
pub struct CourierContact {
    /// Name.
    pub name: String,
    /// Phone.
    #[schema(value_type = String)]
    pub phone: PhoneNumber,
}

/// A dispute as served.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisputeView {
    /// What went wrong.
    pub reason: DisputeReason,
    /// In the customer's words.
    pub text: String,
    /// Photo urls.
    pub photos: Vec<String>,
    /// When it was opened.
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    /// How an operator settled it (null while open).
    pub resolution: Option<ResolutionView>,
}

/// How a dispute was settled.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResolutionView {
    /// What went back to the customer, in fen.
    pub refund_fen: u32,
    /// The operator's note.
    pub note: String,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Where an upload is served.
pub fn upload_url(id: &UploadId) -> String {
    format!("/api/v1/uploads/{id}")
}

impl From<&Resolution> for ResolutionView {
    fn from(r: &Resolution) -> Self {
        Self {
            refund_fen: r.refund_fen,
            note: r.note.clone(),
            at: r.at,
        }
    }
}

impl From<&Dispute> for DisputeView {
    fn from(d: &Dispute) -> Self {
        Self {
            reason: d.reason,
            text: d.text.clone(),
            photos: d.photos.iter().map(upload_url).collect(),
            opened_at: d.opened_at,
            resolution: d.resolution.as_ref().map(ResolutionView::from),
        }
    }
}

/// Statuses in which the customer sees who carries the order.
fn carried(status: Status) -> bool {
    matches!(
        status,
        Status::Assigned | Status::PickedUp | Status::Delivered | Status::Disputed
    )
}

impl OrderView {
    /// An order with a known (or no) `eta`, for `viewer`.
    pub async fn new(
        state: &AppState,
        order: Order,
        eta: Option<OffsetDateTime>,
        viewer: Viewer<'_>,
    ) -> Self {
        let (is_customer, is_courier) = match viewer {
            Viewer::Customer => (true, false),
            Viewer::User(me) => (*me == order.customer, order.courier.as_ref() == Some(me)),
            Viewer::Operator => (false, false),
        };
        let contact_phone = if is_customer || is_courier {
            order.extras.contact_phone.clone()
        } else {
            None
        };
        let courier_contact = match (&order.courier, is_customer && carried(order.status())) {
            (Some(courier), true) => state
                .dispatch
                .contact_of(courier.clone())
                .await
                .map(|(name, phone)| CourierContact { name, phone }),
            _ => None,
        };
        Self {
            campus: state.campus_of(&order).to_owned(),
            delivery_photo: order.extras.delivery_photo.as_ref().map(upload_url),
            dispute: order.extras.dispute.as_ref().map(DisputeView::from),
            contact_phone,
            courier_contact,
            eta,
            order,
        }
    }

    /// An order for `viewer`, asking the dispatcher for its `eta` when a
    /// courier is on it.
    pub async fn of(state: &AppState, order: Order, viewer: Viewer<'_>) -> Self {
        let on_the_way = matches!(order.status(), Status::Assigned | Status::PickedUp);
        let eta = match (&order.courier, on_the_way) {
            (Some(courier), true) => {
                state
                    .dispatch
                    .eta_of(
                        order.id.clone(),
                        courier.clone(),
                        order.extras.campus.as_ref(),
                    )
                    .await
            }
            _ => None,
        };
        Self::new(state, order, eta, viewer).await
    }
}
