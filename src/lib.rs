//! lastmile: the HTTP façade and wiring of a campus delivery backend for
//! WeChat mini-programs.
//!
//! - [`config`]: settings from `config/default.toml`, `--config FILE` and `LASTMILE__*` env
//! - [`startup`]: opens storage, starts the actors, registers every route
//! - [`state`]: `AppState`, what every handler shares
//! - [`operator_cli`]: `lastmile operator add|list|revoke` on the stopped service's storage
//! - [`replay`]: `lastmile replay mdrp`: the planner over a public MDRP instance
//! - [`routes`]: one module per resource, HTTP ⇄ actor messages
//! - [`extract`]: the caller's identity and size-limited JSON bodies
//! - [`address`]: the client address behind trusted proxies (limits and strikes count by it)
//! - [`limits`]: the optional per-client rate limit
//! - [`error`]: `ApiError` and its single mapping to HTTP
//! - [`telemetry`]: logs, Prometheus metrics, request observation (labelled by the matched route)

#![warn(missing_docs)]

pub mod address;
pub mod config;
pub mod error;
pub mod extract;
pub mod limits;
pub mod openapi;
pub mod operator_cli;
pub mod replay;
pub mod routes;
pub mod startup;
pub mod state;
pub mod store_cli;
pub mod telemetry;
