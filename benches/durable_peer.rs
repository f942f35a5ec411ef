//! The durable floor `benches/load.sh` also measures: the bare peer plus
//! the least a durable create must do here — one sled insert of the
//! order's record and an answer only after a group-commit flush (the same
//! sled mode, cache and commit window as lastmile), with no actors, auth,
//! validation, logs or metrics. lastmile's create over this is what its
//! own request path costs; this over the bare peer is what durability
//! costs on this machine.
//!
//! Run: `cargo run --release --example durable_peer -- 127.0.0.1:18082 DIR [WINDOW_MS|none]`
//! (`none`: answer after the insert, never flushing — not durable; the
//! difference to the floor is what the flush costs).
//! To see what a sled setting does to the floor, `FLOOR_SEGMENT_SIZE`
//! (bytes, a power of two; sled's default 512 KiB), `FLOOR_CACHE_MB` and
//! `FLOOR_MODE` (`fast` as lastmile, or `small`) override lastmile's;
//! `FLOOR_KEYS=customer` keys records the way lastmile keys orders.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use tokio::sync::oneshot;

#[path = "peer_shapes.rs"]
mod shapes;

use shapes::{Body, CREATED};

/// lastmile's default `storage.commit_window`, in ms (third argument).
const COMMIT_WINDOW_MS: u64 = 1;
/// lastmile's page cache.
const CACHE_BYTES: u64 = 256 * 1024 * 1024;

type Waiter = oneshot::Sender<bool>;

struct Peer {
    tree: sled::Tree,
    committer: mpsc::Sender<Waiter>,
    next: AtomicU64,
    /// Answer without waiting for a flush (`WINDOW_MS` = `none`): what the
    /// flush itself costs is the difference.
    no_flush: bool,
    /// Key each record as lastmile keys an order (`FLOOR_KEYS=customer`):
    /// the customer's tag first, so each customer's records are one range
    /// and inserts land all over the tree instead of at its end.
    by_customer: bool,
}

async fn create(
    req: actix_web::HttpRequest,
    peer: web::Data<Peer>,
    body: web::Json<Body>,
) -> HttpResponse {
    let Ok(record) = serde_json::to_vec(&body.into_inner()) else {
        return HttpResponse::BadRequest().finish();
    };
    // Time-ordered keys: inserts land at the end.
    let seq = peer.next.fetch_add(1, Ordering::Relaxed).to_be_bytes();
    let key: Vec<u8> = if peer.by_customer {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        req.headers()
            .get("authorization")
            .map(|v| v.as_bytes())
            .hash(&mut hasher);
        [&hasher.finish().to_be_bytes()[..5], &seq[..]].concat()
    } else {
        seq.to_vec()
    };
    if peer.tree.insert(key, record).is_err() {
        return HttpResponse::ServiceUnavailable().finish();
    }
    if !peer.no_flush {
        let (tx, rx) = oneshot::channel();
        if peer.committer.send(tx).is_err() || !matches!(rx.await, Ok(true)) {
            return HttpResponse::ServiceUnavailable().finish();
        }
    }
    HttpResponse::Created()
        .content_type("application/json")
        .body(CREATED)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

/// lastmile's group commit: at most one flush per window, shared by every
/// writer waiting when it starts.
fn flusher(db: sled::Db, window: Duration, rx: mpsc::Receiver<Waiter>) {
    let mut last = Instant::now() - window;
    while let Ok(first) = rx.recv() {
        if let Some(rest) = window.checked_sub(last.elapsed()) {
            std::thread::sleep(rest);
        }
        last = Instant::now();
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let ok = db.flush().is_ok();
        for waiter in batch {
            let _ = waiter.send(ok);
        }
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:18082".into());
    let dir = args.next().unwrap_or_else(|| "durable-peer-data".into());
    let window_arg = args.next();
    let no_flush = window_arg.as_deref() == Some("none");
    let window_ms = window_arg
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(COMMIT_WINDOW_MS);
    let window = Duration::from_millis(window_ms);
    let setting = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let mut config = sled::Config::new()
        .path(dir)
        .cache_capacity(setting("FLOOR_CACHE_MB").map_or(CACHE_BYTES, |mb| mb << 20))
        .mode(match std::env::var("FLOOR_MODE").as_deref() {
            Ok("small") => sled::Mode::LowSpace,
            _ => sled::Mode::HighThroughput,
        });
    if let Some(size) = setting("FLOOR_SEGMENT_SIZE") {
        config = config.segment_size(size as usize);
    }
    let db = config.open().map_err(std::io::Error::other)?;
    let tree = db.open_tree("orders").map_err(std::io::Error::other)?;
    let (committer, rx) = mpsc::channel();
    std::thread::spawn(move || flusher(db, window, rx));
    let peer = web::Data::new(Peer {
        tree,
        committer,
        next: AtomicU64::new(0),
        no_flush,
        by_customer: std::env::var("FLOOR_KEYS").as_deref() == Ok("customer"),
    });
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    HttpServer::new(move || {
        App::new()
            .app_data(peer.clone())
            .app_data(web::JsonConfig::default().limit(64 * 1024))
            .route("/healthz", web::get().to(healthz))
            .route("/api/v1/orders", web::post().to(create))
    })
    .workers(workers)
    .bind(bind)?
    .run()
    .await
}
