//! lastmile's actor crate: the domain, the actors that own it, and the
//! adapters they use.
//!
//! One folder (or file) per owner; each actor gets a repository over its
//! own trees only and hears the others through messages and events:
//!
//! - [`auth`]: [`auth::sessions`] (login via jscode2session, bearer tokens) and
//!   [`auth::token`] (the app's access_token: single flight, backoff, guarded invalidation)
//! - [`campus`]: the campus map and distances
//! - [`dispatch`]: the dispatcher actor (couriers, presence, the waiting pool, grabs), which
//!   drives its planning core every tick: [`dispatch::planner`] (bundles, matching, commitment; pure)
//! - [`domain`]: parsed values (`OrderId`, `OpenId`, `Fen`, …), the order record and its status machine
//! - [`errors`]: an error with its causes for one log line
//! - [`flight`]: single flight — concurrent asks for one key share one call
//! - [`notify`]: [`notify::notifier`] (the durable outbox worker: subscribe / template
//!   messages with retries) and [`notify::formid`] (form_ids, paid prepay_ids, subscribe grants)
//! - [`objects`]: object storage (local directory or Qiniu form upload)
//! - [`orders`]: the sharded, supervised orders actors, their protocol and the
//!   [`orders::OrderEvent`]s they publish, and the router handle
//! - [`payments`]: the payments actor: prepay, notify, query/close on timeout, refunds
//! - [`ratelimit`]: per-client token buckets (when `http.rate_limit` is set)
//! - [`research`]: offline: [`research::mdrp`] (the public MDRP instances, solution files,
//!   our feasibility checker and metrics) and [`research::replay`] (a day through the planner)
//! - [`sharecode`]: wxacode share codes, made once and cached
//! - [`supervise`]: panic containment and fault injection shared by every actor
//! - [`storage`]: sled, one repository per owner, record encoding, group commit (the only
//!   module naming sled)
//! - [`uploads`]: private photos (checked and cleaned by the pure [`uploads::photo`]) and who may see them
//! - [`wechat`]: the WeChat client trait, the in-process sandbox and the live client

#![warn(missing_docs)]

pub mod auth;
pub mod campus;
pub mod content;
pub mod dispatch;
pub mod domain;
pub mod errors;
pub mod flight;
pub mod ledger;
pub mod notify;
pub mod objects;
pub mod orders;
pub mod payments;
pub mod pricing;
pub mod ratelimit;
pub mod research;
pub mod sharecode;
pub mod storage;
pub mod supervise;
pub mod uploads;
pub mod wechat;
