//! lastmile's actor crate: the domain, the actors that own it, and the
//! adapters they use.
//!
//! - [`campus`]: the campus map and distances
//! - [`dispatch`]: the dispatcher actor (couriers, presence, the waiting pool, grabs), which
//!   drives its planning core every tick: [`dispatch::planner`] (bundles, matching, commitment; pure),
//!   [`dispatch::replay`] and [`dispatch::mdrp`] (the public MDRP instances, solution files,
//!   our feasibility checker and metrics)
//! - [`domain`]: parsed values (`OrderId`, `OpenId`, `Fen`, …), the order record and its status machine
//! - [`formid`]: the form-id pool: form_ids, paid prepay_ids, subscribe grants
//! - [`notifier`]: the durable outbox worker: subscribe / template messages with retries
//! - [`objects`]: object storage (local directory or Qiniu form upload)
//! - [`orders`]: the sharded, supervised orders actors and their router
//! - [`payments`]: the payments actor: prepay, notify, query/close on timeout, refunds
//! - [`ratelimit`]: per-client token buckets (when `http.rate_limit` is set)
//! - [`sessions`]: login via jscode2session and bearer tokens
//! - [`sharecode`]: wxacode share codes, made once and cached
//! - [`supervise`]: panic containment and fault injection shared by every actor
//! - [`storage`]: sled trees, record encoding, group commit (the only module naming sled)
//! - [`token`]: the access_token refresher (single flight, backoff, guarded invalidation)
//! - [`wechat`]: the WeChat client trait, the in-process sandbox and the live client

#![warn(missing_docs)]

pub mod campus;
pub mod dispatch;
pub mod domain;
pub mod formid;
pub mod notifier;
pub mod objects;
pub mod orders;
pub mod payments;
pub mod ratelimit;
pub mod sessions;
pub mod sharecode;
pub mod storage;
pub mod supervise;
pub mod token;
pub mod wechat;
