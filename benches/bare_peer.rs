//! The bare actix-web peer `benches/load.sh` measures lastmile against, in
//! the same run: the same routes, the same worker count, the same JSON
//! parsed into the same shape of body — and nothing else (no auth, no
//! validation, no storage, no logs, no metrics). Its throughput is the
//! ceiling of the request path on this machine.
//!
//! Run: `cargo run --release --example bare_peer -- 127.0.0.1:18081`.

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;

/// The order body lastmile takes, parsed the same way.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Body {
    kind: Option<String>,
    pickup: Option<Location>,
    dropoff: Option<Location>,
    pickup_code: Option<String>,
    fee_fen: Option<serde_json::Number>,
    note: Option<String>,
    ready_at: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Location {
    place_id: Option<String>,
    detail: Option<String>,
}

/// A fixed order, about the size of lastmile's answer.
const CREATED: &str = r#"{"id":"00000000000000000000000000000000","customer":"oBARE","kind":"express","pickup":{"place_id":"cainiao-north","detail":"shelf 1-1"},"dropoff":{"place_id":"dorm-1","detail":"room 100"},"pickup_code":"1-1-0001","fee_fen":300,"note":"","status":"awaiting_payment","courier":null,"ready_at":"2026-12-03T00:00:00Z","eta":null,"created_at":"2026-12-03T00:00:00Z","updated_at":"2026-12-03T00:00:00Z"}"#;

async fn create(body: web::Json<Body>) -> HttpResponse {
    let _ = body.into_inner();
    HttpResponse::Created()
        .content_type("application/json")
        .body(CREATED)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    HttpServer::new(|| {
        App::new()
            .app_data(web::JsonConfig::default().limit(64 * 1024))
            .route("/healthz", web::get().to(healthz))
            .route("/api/v1/orders", web::post().to(create))
    })
    .workers(workers)
    .bind(bind)?
    .run()
    .await
}
