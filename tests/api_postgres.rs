//! The API tests again, every body on PostgreSQL: the same modules as
//! `tests/api` (included, not copied), their stores databases on a
//! server the harness starts once for this binary. The repositories'
//! own contract (`storage`) already runs on both engines there.
//!
//! Left to the sled binary, which runs them once: modules that hold
//! nothing in a store (`replay`, `wechat_live`, `wechatpay_v3`,
//! `openapi`); some helpers serve only those, hence the allowance below.

#![allow(dead_code)]

/// The engine this binary's tests run on.
pub const ENGINE: postgres::TestEngine = postgres::TestEngine::Postgres;

#[path = "api/admin.rs"]
mod admin;
#[path = "api/auth.rs"]
mod auth;
#[path = "api/binary.rs"]
mod binary;
#[path = "api/campuses.rs"]
mod campuses;
#[path = "api/console.rs"]
mod console;
#[path = "api/contact.rs"]
mod contact;
#[path = "api/content.rs"]
mod content;
#[path = "api/deploy.rs"]
mod deploy;
#[path = "api/dispatch.rs"]
mod dispatch;
#[path = "api/disputes.rs"]
mod disputes;
#[path = "api/fuzz.rs"]
mod fuzz;
#[path = "api/helpers.rs"]
mod helpers;
#[path = "api/money.rs"]
mod money;
#[path = "api/notifier.rs"]
mod notifier;
#[path = "api/operators.rs"]
mod operators;
#[path = "api/ops.rs"]
mod ops;
#[path = "api/orders.rs"]
mod orders;
#[path = "api/outreach.rs"]
mod outreach;
#[path = "api/payments.rs"]
mod payments;
#[path = "api/payouts.rs"]
mod payouts;
#[path = "api/postgres.rs"]
mod postgres;
#[path = "api/release.rs"]
mod release;
#[path = "api/resilience.rs"]
mod resilience;
#[path = "api/review.rs"]
mod review;
#[path = "api/scoping.rs"]
mod scoping;
#[path = "api/secrets.rs"]
mod secrets;
#[path = "api/sharecode.rs"]
mod sharecode;
#[path = "api/shipping.rs"]
mod shipping;
#[path = "api/token.rs"]
mod token;
#[path = "api/uploads.rs"]
mod uploads;
