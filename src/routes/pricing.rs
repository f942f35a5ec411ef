//! The campus's suggested fee for an errand, and its floor.

use actix_web::{web, HttpResponse};
use lastmile_actors::domain::{OrderKind, PlaceId};
use lastmile_actors::pricing::Quote;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::state::AppState;

/// What to price.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PriceQuery {
    /// `express` or `takeout`.
    #[param(required = true, value_type = OrderKind)]
    kind: Option<String>,
    /// The pickup place id.
    #[param(required = true, value_type = String)]
    pickup: Option<String>,
    /// The drop-off place id.
    #[param(required = true, value_type = String)]
    dropoff: Option<String>,
    /// The campus id (optional while the places name one campus).
    #[param(value_type = Option<String>)]
    campus: Option<String>,
}

fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, ApiError> {
    value
        .as_deref()
        .ok_or_else(|| ApiError::Validation(format!("{field} is required")))
}

/// The suggested fee of an errand: the campus's base for its kind plus a
/// price per started kilometre of the route beyond the first, and the
/// lowest fee an order may carry there. No sign-in needed: it is the
/// campus's price list.
#[utoipa::path(
    get,
    path = "/api/v1/price",
    tag = "orders",
    params(PriceQuery),
    responses(
        (status = 200, description = "The suggested fee, the floor, how the fee is made up", body = Quote),
    )
)]
pub async fn price(
    state: web::Data<AppState>,
    query: web::Query<PriceQuery>,
) -> Result<HttpResponse, ApiError> {
    let kind = OrderKind::parse(required(&query.kind, "kind")?)?;
    let pickup = required(&query.pickup, "pickup")?;
    let dropoff = required(&query.dropoff, "dropoff")?;
    let campus = state.campuses.resolve(
        query.campus.as_deref(),
        &[("pickup", pickup), ("dropoff", dropoff)],
    )?;
    let pickup = PlaceId::parse(pickup, campus, "pickup")?;
    let dropoff = PlaceId::parse(dropoff, campus, "dropoff")?;
    let quote = campus
        .quote(kind, pickup.as_str(), dropoff.as_str())
        .ok_or_else(|| ApiError::Validation("pickup or dropoff is not on the map".into()))?;
    Ok(HttpResponse::Ok().json(quote))
}
