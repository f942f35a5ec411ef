//! lastmile's integration tests: one binary, one module per area.
//!
//! - `helpers`: `spawn_app()` (in-process, actix_web::test) and `BinaryApp` (the real binary)
//! - `auth`, `orders`, `ops`: the HTTP API in process
//! - `binary`: the release binary end to end (durability, restarts, signals, config)
//! - `wechat_live`: the live WeChat client against a fake WeChat on 127.0.0.1
//! - `storage`: each repository's contract, on sled and on PostgreSQL
//!
//! Every test here runs on sled; `tests/api_postgres.rs` runs the same
//! bodies again on PostgreSQL (`ENGINE` tells the helpers which).

/// The engine this binary's tests run on.
pub const ENGINE: postgres::TestEngine = postgres::TestEngine::Sled;

mod admin;
mod auth;
mod binary;
mod campuses;
mod console;
mod contact;
mod content;
mod deploy;
mod dispatch;
mod disputes;
mod fuzz;
mod helpers;
mod money;
mod notifier;
mod openapi;
mod operators;
mod ops;
mod orders;
mod outage;
mod outreach;
mod payments;
mod payouts;
mod postgres;
mod release;
mod replay;
mod resilience;
mod review;
mod scoping;
mod secrets;
mod sharecode;
mod shipping;
mod storage;
mod store_copy;
mod token;
mod uploads;
mod wechat_live;
mod wechatpay_v3;
