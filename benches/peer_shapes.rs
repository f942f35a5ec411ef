//! What both peers of `benches/load.sh` share: the order body lastmile
//! takes, parsed the same way, and a fixed answer about the size of its.

use serde::{Deserialize, Serialize};

/// The order body lastmile takes (the durable peer also stores it whole).
#[derive(Deserialize, Serialize)]
#[allow(dead_code)]
pub struct Body {
    kind: Option<String>,
    pickup: Option<Location>,
    dropoff: Option<Location>,
    pickup_code: Option<String>,
    fee_fen: Option<serde_json::Number>,
    note: Option<String>,
    ready_at: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[allow(dead_code)]
struct Location {
    place_id: Option<String>,
    detail: Option<String>,
}

/// A fixed order, about the size of lastmile's answer.
pub const CREATED: &str = r#"{"id":"00000000000000000000000000000000","customer":"oBARE","kind":"express","pickup":{"place_id":"cainiao-north","detail":"shelf 1-1"},"dropoff":{"place_id":"dorm-1","detail":"room 100"},"pickup_code":"1-1-0001","fee_fen":300,"note":"","status":"awaiting_payment","courier":null,"ready_at":"2026-12-03T00:00:00Z","eta":null,"created_at":"2026-12-03T00:00:00Z","updated_at":"2026-12-03T00:00:00Z"}"#;
