//! `GET /api/v1/campuses`: the campuses served here with their places,
//! without sign-in — the ids a mini-program puts in an order.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use serde_json::json;

use crate::helpers::{order_body, spawn_app};

#[actix_web::test]
async fn the_campuses_and_their_places_are_public_and_are_what_orders_name() {
    let app = spawn_app().await;
    let reply = app.send(TestRequest::get().uri("/api/v1/campuses")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let campuses = reply.body.as_array().expect("a list").clone();
    assert_eq!(campuses.len(), 1, "{}", reply.body);
    let campus = &campuses[0];
    assert_eq!(campus["id"], "main");
    assert_eq!(campus["name"], "Example University main campus");
    assert_eq!(
        campus["origin"],
        json!({"latitude": 40.0, "longitude": 116.3})
    );
    let places = campus["places"].as_array().expect("places");
    assert_eq!(places.len(), 35);
    for place in places {
        for key in ["id", "name", "kind", "x", "y"] {
            assert!(!place[key].is_null(), "{key} missing in {place}");
        }
    }
    // Any two of them make an order.
    let (token, _) = app.login("campus-reader").await;
    let mut body = order_body();
    body["pickup"]["place_id"] = places[0]["id"].clone();
    body["dropoff"]["place_id"] = places[34]["id"].clone();
    let created = app.create_order(&token, &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
}
