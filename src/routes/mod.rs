//! HTTP routes, one file per resource. Handlers translate HTTP to actor
//! calls and back; they hold no state and touch no storage.

pub mod admin;
pub mod auth;
pub mod campuses;
pub mod couriers;
pub mod disputes;
pub mod money;
pub mod operators;
pub mod ops;
pub mod orders;
pub mod outreach;
pub mod payments;
pub mod pricing;
pub mod transfers;
pub mod trust;
pub mod uploads;
pub mod view;
