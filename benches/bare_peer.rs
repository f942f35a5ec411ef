//! The bare actix-web peer `benches/load.sh` measures lastmile against, in
//! the same run: the same routes, the same worker count, the same JSON
//! parsed into the same shape of body — and nothing else (no auth, no
//! validation, no storage, no logs, no metrics). Its throughput is the
//! ceiling of the request path on this machine.
//!
//! Run: `cargo run --release --example bare_peer -- 127.0.0.1:18081`.

use actix_web::{web, App, HttpResponse, HttpServer};

#[path = "peer_shapes.rs"]
mod shapes;

use shapes::{Body, CREATED};

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
