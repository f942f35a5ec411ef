//! What the dispatcher shows: couriers, routes, task lists and the board.

use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::{CampusId, CourierProfile, OpenId, OrderId, PhoneNumber, Review, UploadId};

/// A courier as the API shows them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CourierView {
    /// The courier's openid.
    pub openid: OpenId,
    /// Name.
    pub name: String,
    /// Phone.
    pub phone: PhoneNumber,
    /// Taking orders now.
    pub online: bool,
    /// The campus they work on (where they were last present or hold
    /// tasks; null when not seen since the start).
    #[schema(value_type = Option<String>)]
    pub campus: Option<CampusId>,
    /// Where they are (last reported).
    pub place_id: Option<String>,
    /// Open tasks (assigned or picked up).
    pub open_tasks: u32,
    /// Where the application stands (a suspension past its end reads approved).
    pub review: Review,
    /// The operator's reason for a rejection or suspension.
    pub reason: Option<String>,
    /// When a suspension ends by itself.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub suspended_until: Option<OffsetDateTime>,
    /// Student number.
    pub student_no: Option<String>,
    /// The student-card photo (an upload id).
    #[schema(value_type = Option<String>)]
    pub card_photo: Option<UploadId>,
    /// When they (last) applied.
    #[serde(with = "time::serde::rfc3339")]
    pub applied_at: OffsetDateTime,
    /// WeChat's content check wants an operator to look at the name (or
    /// could not check it).
    pub name_flagged: bool,
}

impl CourierView {
    /// A profile with a presence: online or not, where, with how many
    /// open tasks, on which campus.
    pub fn of(
        profile: CourierProfile,
        now: OffsetDateTime,
        online: bool,
        place_id: Option<String>,
        open_tasks: u32,
        campus: Option<CampusId>,
    ) -> Self {
        let review = profile.review_at(now);
        let suspended = review == Review::Suspended;
        Self {
            online,
            campus,
            place_id,
            open_tasks,
            openid: profile.openid,
            name: profile.name,
            phone: profile.phone,
            review,
            reason: matches!(review, Review::Rejected | Review::Suspended)
                .then_some(profile.reason)
                .flatten(),
            suspended_until: profile.suspended_until.filter(|_| suspended),
            student_no: profile.student_no,
            card_photo: profile.card_photo,
            applied_at: profile.applied_at,
            name_flagged: profile.name_flagged,
        }
    }

    /// A profile not present on any campus (on the campus stored with it).
    pub fn absent(profile: CourierProfile, now: OffsetDateTime) -> Self {
        let campus = profile.campus.clone();
        Self::of(profile, now, false, None, 0, campus)
    }
}

/// What a courier does at a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopAction {
    /// Takes the order at its pickup place.
    Pickup,
    /// Hands it over at its dropoff place.
    Dropoff,
}

/// A stop of a courier's route, as the task list shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RouteStop {
    /// The order.
    pub order_id: OrderId,
    /// `pickup` or `dropoff`.
    pub action: StopAction,
    /// Where.
    pub place_id: String,
    /// When it is planned (a pickup never before the order's `ready_at`).
    #[serde(with = "time::serde::rfc3339")]
    pub eta: OffsetDateTime,
}

/// Why a task left a courier before it was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawReason {
    /// The customer cancelled it.
    Cancelled,
    /// It went back to the pool (the courier was offline too long).
    Reassigned,
}

/// A task taken away from a courier, as their task list tells them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Withdrawn {
    /// The order.
    pub order_id: OrderId,
    /// Why.
    pub reason: WithdrawReason,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A courier's task list: open tasks and recently withdrawn ones.
#[derive(Debug, Clone, Default)]
pub struct TaskList {
    /// Assigned or picked up, oldest first.
    pub open: Vec<OrderId>,
    /// The stops still to make, in order, with predicted times.
    pub route: Vec<RouteStop>,
    /// Taken away within the last hour, newest first.
    pub withdrawn: Vec<Withdrawn>,
}

/// Every courier a campus's dispatcher knows, with their routes, and the
/// orders waiting for one.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Board {
    /// Registered couriers who were seen since the start, online first.
    pub couriers: Vec<BoardCourier>,
    /// Paid orders nobody has yet, oldest first.
    pub waiting: Vec<BoardWaiting>,
}

/// A courier on the board.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BoardCourier {
    /// Name, phone, presence, place, open tasks.
    #[serde(flatten)]
    pub courier: CourierView,
    /// The stops still to make, in order, with predicted times.
    pub route: Vec<RouteStop>,
}

/// An order waiting for a courier.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BoardWaiting {
    /// The order.
    pub order_id: OrderId,
    /// Where it is picked up.
    pub pickup: String,
    /// Where it goes.
    pub dropoff: String,
    /// Since when it waits.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// False when its pickup or drop-off is no longer on the campus map
    /// (the map changed after it was paid): no courier can be sent, and it
    /// waits for an operator to refund it.
    pub on_map: bool,
}
