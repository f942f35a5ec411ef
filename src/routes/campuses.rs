//! The campuses this deployment serves, for the mini-program's place
//! pickers and maps: no sign-in needed, it is public information.

use actix_web::{web, HttpResponse};
use lastmile_actors::campus::Origin;
use serde::Serialize;
use utoipa::ToSchema;

use crate::routes::admin::MapPlace;
use crate::state::AppState;

/// One campus: its id, name, where its map's origin lies, its places.
#[derive(Serialize, ToSchema)]
pub struct CampusView {
    /// The id orders name in `campus` (1–16 of `a-z`, `0-9`, `-`).
    id: String,
    /// Its name.
    name: String,
    /// Where x = 0, y = 0 lies (null when the map gives no position).
    origin: Option<Origin>,
    /// Every place, with its kind and position in metres from the origin.
    places: Vec<MapPlace>,
}

/// The campuses served here.
#[utoipa::path(
    get,
    path = "/api/v1/campuses",
    tag = "orders",
    responses(
        (status = 200, description = "The campuses served here, with their places", body = Vec<CampusView>),
    )
)]
pub async fn campuses(state: web::Data<AppState>) -> HttpResponse {
    let views: Vec<CampusView> = state
        .campuses
        .iter()
        .map(|campus| CampusView {
            id: campus.id().to_owned(),
            name: campus.name().to_owned(),
            origin: campus.origin(),
            places: campus.places().iter().map(MapPlace::of).collect(),
        })
        .collect();
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(views)
}
