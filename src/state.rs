//! What every handler shares: handles on the actors, the campus map, the
//! metrics renderer. Built once in [`crate::startup`].

use std::sync::Arc;

use lastmile_actors::auth::sessions::Sessions;
use lastmile_actors::auth::token::Tokens;
use lastmile_actors::campus::Campuses;
use lastmile_actors::dispatch::Dispatch;
use lastmile_actors::ledger::Ledger;
use lastmile_actors::notify::formid::FormIds;
use lastmile_actors::notify::notifier::Notifications;
use lastmile_actors::orders::Orders;
use lastmile_actors::payments::Payments;
use lastmile_actors::sharecode::ShareCodes;
use lastmile_actors::wechat::SandboxWeChat;
use metrics_exporter_prometheus::PrometheusHandle;

/// What the handlers share: handles on the actors, the map, the metrics.
#[derive(Clone)]
pub struct AppState {
    /// The orders shards' router.
    pub orders: Orders,
    /// Login and token checks.
    pub sessions: Sessions,
    /// Named operators and their roles.
    pub operators: lastmile_actors::auth::operators::Operators,
    /// WeChat Pay sessions.
    pub payments: Payments,
    /// The money ledger.
    pub ledger: Ledger,
    /// `money.commission_percent` and the campuses' own (for couriers'
    /// pending earnings).
    pub commission: Arc<lastmile_actors::domain::Commission>,
    /// Form ids, prepay ids and subscribe grants.
    pub formids: FormIds,
    /// The app's access_token.
    pub tokens: Tokens,
    /// WeChat's content check of the texts users write.
    pub content: lastmile_actors::content::ContentCheck,
    /// wxacode share codes.
    pub share_codes: ShareCodes,
    /// Couriers and matching.
    pub dispatch: Dispatch,
    /// The message outbox worker.
    pub notifications: Notifications,
    /// Per-client limits, when `http.rate_limit` is set.
    pub rate_limits: Option<lastmile_actors::ratelimit::RateLimits>,
    /// Failed admin sign-ins and refused callbacks per address (always on).
    pub strikes: lastmile_actors::ratelimit::RateLimits,
    /// `couriers.review`: applications need a student number and card photo.
    pub couriers_reviewed: bool,
    /// Private photos.
    pub uploads: lastmile_actors::uploads::Uploads,
    /// The service's public address (`wechat.notify_base`, else the bound one).
    pub public_base: Arc<str>,
    /// Object storage (`/files/` serves the public objects kept locally).
    pub objects: Arc<dyn lastmile_actors::objects::ObjectStore>,
    /// The WeChat simulator, in sandbox mode only.
    pub sandbox: Option<Arc<SandboxWeChat>>,
    /// WeChat Pay 商家转账 (verifies its callbacks), when payouts use it.
    pub transfers: Option<Arc<lastmile_actors::wechat::transfer::TransferApi>>,
    /// The campuses served and their maps.
    pub campuses: Arc<Campuses>,
    /// Proxies whose `X-Forwarded-For` is believed (`http.trusted_proxies`).
    pub trusted_proxies: Arc<[std::net::IpAddr]>,
    /// Verifies WeChat Pay notifies on the HTTP workers.
    pub pay_signer: Arc<lastmile_actors::wechat::PaySigner>,
    /// `admin.token`: the operator console and admin API are off (404) without it.
    pub admin_token: Option<Arc<str>>,
    /// The OpenAPI document served at `/openapi.json`, finished for the map.
    pub api_doc: actix_web::web::Bytes,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
}

impl AppState {
    /// A campus as orders are checked against it.
    pub fn campus_ref(
        &self,
        campus: &lastmile_actors::campus::Campus,
    ) -> lastmile_actors::orders::CampusOf {
        lastmile_actors::orders::CampusOf::of(&self.campuses, campus)
    }

    /// The id of the campus an order is on (one written before campuses
    /// is on the default campus).
    pub fn campus_of<'a>(&'a self, order: &'a lastmile_actors::domain::Order) -> &'a str {
        match &order.extras.campus {
            Some(id) => id.as_str(),
            None => self.campuses.first().id(),
        }
    }
}
