//! Wiring: open storage, start the actors, build the one `App` with every
//! route, and run the server on a listener bound here (port 0 works).

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use lastmile_actors::auth::operators::Operators;
use lastmile_actors::auth::sessions::Sessions;
use lastmile_actors::auth::token::Tokens;
use lastmile_actors::campus::{CampusError, Campuses};
use lastmile_actors::dispatch::{Dispatch, DispatchConfig};
use lastmile_actors::domain::{ChinaDay, Commission};
use lastmile_actors::ledger::{Ledger, LedgerConfig, Payouts, Reconciler};
use lastmile_actors::notify::formid::FormIds;
use lastmile_actors::notify::notifier::{Notifications, NotifierConfig};
use lastmile_actors::objects::{LocalObjects, ObjectStore, QiniuObjects};
use lastmile_actors::orders::{Orders, OrdersConfig};
use lastmile_actors::payments::Payments;
use lastmile_actors::sharecode::ShareCodes;
use lastmile_actors::storage::{Engine, StorageError};
use lastmile_actors::uploads::Uploads;
use lastmile_actors::wechat::transfer::TransferApi;
use lastmile_actors::wechat::{Mode, SandboxWeChat, WeChat, WeChatError};

use crate::config::{ObjectBackend, Settings};
use crate::error::ApiError;
use crate::routes::{
    admin, auth, campuses, couriers, disputes, money, operators, ops, orders, outreach, payments,
    pricing, transfers, trust, uploads,
};
use crate::state::AppState;
use crate::{limits, openapi, telemetry};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The campus map is bad.
    #[error(transparent)]
    Campus(#[from] CampusError),
    /// The database could not be opened.
    #[error("cannot open storage: {0}")]
    Storage(#[from] StorageError),
    /// The configured store could not be opened (its location named).
    #[error(transparent)]
    Open(#[from] crate::config::OpenError),
    /// The WeChat client could not be built.
    #[error("cannot build the WeChat client: {0}")]
    WeChat(#[from] WeChatError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Everything started for one running service (kept by tests to poke at).
pub struct Services {
    /// Shared with the handlers.
    pub state: AppState,
    /// The database, flushed on shutdown.
    pub store: Engine,
}

/// The WeChat client `settings` ask for: the simulator (also returned as
/// such, for the sandbox routes) or the live client.
pub struct WeChatClients {
    /// What the actors call.
    pub client: Arc<dyn WeChat>,
    /// The same object when it is the sandbox.
    pub sandbox: Option<Arc<SandboxWeChat>>,
    /// WeChat Pay 商家转账 (the simulator's in the sandbox; live only when
    /// its v3 keys are configured).
    pub transfers: Option<Arc<TransferApi>>,
}

impl WeChatClients {
    /// A given sandbox (tests keep a handle to it).
    pub fn sandbox(sandbox: Arc<SandboxWeChat>) -> Self {
        Self {
            client: sandbox.clone(),
            transfers: Some(sandbox.transfer_api().clone()),
            sandbox: Some(sandbox),
        }
    }
}

/// Opens storage and starts the actors; must run inside an actix `System`.
/// `notify_base` is the service's own URL as WeChat reaches it.
pub fn start_services(
    settings: &Settings,
    wechat: WeChatClients,
    notify_base: &str,
) -> Result<Services, StartupError> {
    let campuses = Arc::new(Campuses::load(&settings.campus.map)?);
    let commission = commission_of(settings, &campuses);
    let store = settings.storage.open()?;
    // The orders shards and the actors that hear their events need each
    // other: the shards' addresses come first, their listeners last.
    let (orders, orders_wiring) = Orders::start(
        store.order_repo(),
        OrdersConfig {
            shards: settings.order_shards(),
            payment_timeout: settings.orders.payment_timeout,
            auto_confirm: settings.orders.auto_confirm,
            max_unpaid: settings.orders.max_unpaid,
            delivery_photo_required: settings.orders.delivery_photo
                == crate::config::DeliveryPhoto::Required,
            untaken_notice_after: settings.orders.untaken_notice_after,
            untaken_refund_after: settings.orders.untaken_refund_after,
            shipping_info: settings.wechat.shipping_info,
        },
    );
    let sessions = Sessions::start(store.session_repo(), wechat.client.clone())?;
    let operators = Operators::start(store.operator_repo())?;
    let messages = &settings.messages;
    let templates = [
        &messages.template_assigned,
        &messages.template_picked_up,
        &messages.template_delivered,
        &messages.template_refunded,
        &messages.template_untaken,
    ];
    let formids = FormIds::start(
        store.formid_repo(),
        templates.into_iter().cloned().collect(),
    );
    let tokens = Tokens::start(
        wechat.client.clone(),
        store.token_repo(),
        settings.wechat.stable_token,
    );
    let dispatch = Dispatch::start(
        store.courier_repo(),
        orders.clone(),
        campuses.clone(),
        DispatchConfig {
            tick: settings.dispatch.tick,
            max_tasks: settings.dispatch.max_tasks,
            reassign_after: settings.dispatch.reassign_after,
            auto: settings.dispatch.auto,
            presence_ttl: settings.dispatch.presence_ttl,
            speed: settings.dispatch.speed,
            pickup_service: settings.dispatch.pickup_service,
            dropoff_service: settings.dispatch.dropoff_service,
            target: settings.dispatch.target,
            max: settings.dispatch.max,
            review: settings.couriers.review,
            releases_per_day: settings.couriers.releases_per_day,
        },
    );
    let notifications = Notifications::start(
        store.outbox_repo(),
        wechat.client.clone(),
        tokens.clone(),
        formids.clone(),
        orders.clone(),
        NotifierConfig {
            assigned: settings.messages.template_assigned.clone(),
            picked_up: settings.messages.template_picked_up.clone(),
            delivered: settings.messages.template_delivered.clone(),
            refunded: settings.messages.template_refunded.clone(),
            untaken: settings.messages.template_untaken.clone(),
            mch_id: settings.wechat.mch_id.clone(),
            expire_after: settings.messages.expire_after,
        },
    );
    let objects = object_store(settings, &store, notify_base);
    let uploads = Uploads::start(
        store.upload_repo(),
        objects.clone(),
        orders.clone(),
        settings.uploads.per_day,
    );
    let share_codes = ShareCodes::start(
        store.share_code_repo(),
        wechat.client.clone(),
        tokens.clone(),
        objects.clone(),
        settings.messages.share_codes_per_day,
    );
    let pay_signer = Arc::new(wechat.client.pay().signer().clone());
    let payments = Payments::start(
        store.payment_repo(),
        orders.clone(),
        formids.clone(),
        wechat.client.clone(),
        notify_base.to_owned(),
    );
    let ledger = Ledger::start(
        store.ledger_repo(),
        LedgerConfig {
            commission: commission.clone(),
        },
        settings.money.rules(),
        wechat.transfers.clone().map(|api| Payouts {
            api,
            appid: settings.wechat.appid.clone(),
            scene_id: settings.wechat.transfer_scene_id.clone(),
            notify_url: format!("{notify_base}{}", transfers::TRANSFER_NOTIFY_PATH),
        }),
        settings.money.reconcile_time().map(|at| Reconciler {
            wechat: wechat.client.clone(),
            at,
        }),
    )?;
    orders_wiring.listen(vec![
        dispatch.listener(),
        payments.listener(),
        notifications.listener(),
        ledger.listener(),
    ]);
    let api_doc = crate::openapi::document(
        &campuses,
        wechat.sandbox.is_some(),
        settings.money.min_withdrawal_fen,
    )
    .to_string()
    .into();
    // The recorder first: the checker keeps handles on its counters.
    let metrics = telemetry::prometheus();
    let content =
        lastmile_actors::content::ContentCheck::new(wechat.client.clone(), tokens.clone());
    let state = AppState {
        content,
        orders,
        sessions,
        operators,
        payments,
        ledger,
        commission: Arc::new(commission),
        formids,
        tokens,
        share_codes,
        dispatch,
        notifications,
        rate_limits: settings
            .http
            .rate_limit
            .map(lastmile_actors::ratelimit::RateLimits::start),
        strikes: lastmile_actors::ratelimit::RateLimits::start_with(
            lastmile_actors::ratelimit::Rate::strikes(settings.http.failed_attempts_per_minute),
        ),
        objects,
        couriers_reviewed: settings.couriers.review,
        uploads,
        public_base: Arc::from(notify_base),
        sandbox: wechat.sandbox,
        transfers: wechat.transfers,
        campuses,
        trusted_proxies: settings.http.trusted_proxies.clone().into(),
        admin_token: settings.admin.token.as_ref().map(|t| Arc::from(t.expose())),
        pay_signer,
        api_doc,
        metrics,
    };
    Ok(Services { state, store })
}

/// `money.commission_percent`, and the campuses that set their own.
fn commission_of(settings: &Settings, campuses: &Campuses) -> Commission {
    Commission {
        default: settings.money.commission_percent,
        campuses: campuses
            .iter()
            .filter_map(|c| Some((c.campus_id().clone(), c.commission_percent()?)))
            .collect(),
    }
}

/// The object store `objects.backend` names (Qiniu's settings are checked
/// at load); local objects live in the store.
fn object_store(settings: &Settings, store: &Engine, public_base: &str) -> Arc<dyn ObjectStore> {
    match settings.qiniu_config() {
        Some(qiniu) if settings.objects.backend == ObjectBackend::Qiniu => {
            Arc::new(QiniuObjects::new(qiniu))
        }
        _ => Arc::new(LocalObjects::new(
            store.object_repo(&settings.objects.local_dir),
            public_base.to_owned(),
        )),
    }
}

/// The WeChat client the settings ask for.
pub fn wechat_client(settings: &Settings) -> Result<WeChatClients, StartupError> {
    Ok(match settings.wechat.mode {
        Mode::Sandbox => WeChatClients::sandbox(Arc::new(SandboxWeChat::new(&settings.wechat))),
        Mode::Live => WeChatClients {
            client: Arc::new(lastmile_actors::wechat::LiveWeChat::new(&settings.wechat)?),
            sandbox: None,
            // Checked at load when payouts are transfers.
            transfers: settings.wechat.live_transfer_api().ok().map(Arc::new),
        },
    })
}

/// `wechat.notify_base`, or the bound address when it is left empty.
pub fn notify_base(settings: &Settings, bound: std::net::SocketAddr) -> String {
    if !settings.wechat.notify_base.is_empty() {
        return settings.wechat.notify_base.clone();
    }
    let host = if bound.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        bound.ip().to_string()
    };
    format!("http://{host}:{}", bound.port())
}

fn resource(path: &str) -> actix_web::Resource {
    web::resource(path)
        .app_data(telemetry::RouteLabel::of(path))
        .app_data(ops::Allowed(
            openapi::allowed_methods(path).unwrap_or("GET"),
        ))
        .default_service(web::to(ops::method_not_allowed))
}

/// The resource at the path a handler's `#[utoipa::path]` documents (the
/// document and the router read the same string), with its routes.
fn documented<P: utoipa::Path>(
    routes: impl FnOnce(actix_web::Resource) -> actix_web::Resource,
) -> (String, actix_web::Resource) {
    plain(&P::path(), routes)
}

/// A resource the document does not list, with its routes.
fn plain(
    path: &str,
    routes: impl FnOnce(actix_web::Resource) -> actix_web::Resource,
) -> (String, actix_web::Resource) {
    (path.to_owned(), routes(resource(path)))
}

/// Every route but the fallback. The router tries resources in order and
/// matches a pattern with a `{segment}` by regex, a static one by string
/// compare: statics go first (a static path is never shadowed by a
/// pattern here), so `/healthz` or `POST /api/v1/orders` pass no regex.
fn routes() -> Vec<actix_web::Resource> {
    let mut routes = vec![
        documented::<auth::__path_login>(|r| r.route(web::post().to(auth::login))),
        documented::<orders::__path_create>(|r| {
            r.route(web::post().to(orders::create))
                .route(web::get().to(orders::list))
        }),
        documented::<pricing::__path_price>(|r| r.route(web::get().to(pricing::price))),
        documented::<campuses::__path_campuses>(|r| r.route(web::get().to(campuses::campuses))),
        documented::<couriers::__path_open>(|r| r.route(web::get().to(couriers::open))),
        documented::<orders::__path_get>(|r| r.route(web::get().to(orders::get))),
        documented::<couriers::__path_grab>(|r| r.route(web::post().to(couriers::grab))),
        documented::<couriers::__path_release>(|r| r.route(web::post().to(couriers::release))),
        documented::<couriers::__path_pickup>(|r| r.route(web::post().to(couriers::pickup))),
        documented::<couriers::__path_deliver>(|r| r.route(web::post().to(couriers::deliver))),
        documented::<couriers::__path_confirm>(|r| r.route(web::post().to(couriers::confirm))),
        documented::<disputes::__path_open_dispute>(|r| {
            r.route(web::post().to(disputes::open_dispute))
        }),
        documented::<disputes::__path_disputes>(|r| r.route(web::get().to(disputes::disputes))),
        documented::<disputes::__path_resolve>(|r| r.route(web::post().to(disputes::resolve))),
        documented::<couriers::__path_register>(|r| r.route(web::post().to(couriers::register))),
        documented::<couriers::__path_online>(|r| r.route(web::post().to(couriers::online))),
        documented::<couriers::__path_offline>(|r| r.route(web::post().to(couriers::offline))),
        documented::<couriers::__path_location>(|r| r.route(web::post().to(couriers::location))),
        documented::<couriers::__path_tasks>(|r| r.route(web::get().to(couriers::tasks))),
        documented::<money::__path_wallet>(|r| r.route(web::get().to(money::wallet))),
        documented::<money::__path_ledger_check>(|r| r.route(web::get().to(money::ledger_check))),
        documented::<money::__path_withdraw>(|r| {
            r.route(web::post().to(money::withdraw))
                .route(web::get().to(money::my_withdrawals))
        }),
        documented::<money::__path_queue>(|r| r.route(web::get().to(money::queue))),
        documented::<money::__path_money_day>(|r| r.route(web::get().to(money::money_day))),
        documented::<money::__path_reconciliation>(|r| {
            r.route(web::get().to(money::reconciliation))
                .route(web::post().to(money::reconcile))
        }),
        documented::<money::__path_approve>(|r| r.route(web::post().to(money::approve))),
        documented::<money::__path_reject>(|r| r.route(web::post().to(money::reject))),
        documented::<money::__path_paid>(|r| r.route(web::post().to(money::paid))),
        documented::<money::__path_cancel_withdrawal>(|r| {
            r.route(web::post().to(money::cancel_withdrawal))
        }),
        documented::<money::__path_cancel_my_withdrawal>(|r| {
            r.route(web::post().to(money::cancel_my_withdrawal))
        }),
        documented::<orders::__path_cancel>(|r| r.route(web::post().to(orders::cancel))),
        documented::<payments::__path_pay>(|r| r.route(web::post().to(payments::pay))),
        documented::<outreach::__path_add_form_ids>(|r| {
            r.route(web::post().to(outreach::add_form_ids))
        }),
        documented::<outreach::__path_subscribe>(|r| r.route(web::post().to(outreach::subscribe))),
        documented::<outreach::__path_share_code>(|r| r.route(web::get().to(outreach::share_code))),
        documented::<payments::__path_pay_notify>(|r| {
            r.route(web::post().to(payments::pay_notify))
        }),
        documented::<payments::__path_refund_notify>(|r| {
            r.route(web::post().to(payments::refund_notify))
        }),
        documented::<transfers::__path_transfer_notify>(|r| {
            r.route(web::post().to(transfers::transfer_notify))
        }),
        documented::<transfers::__path_sandbox_confirm>(|r| {
            r.route(web::post().to(transfers::sandbox_confirm))
        }),
        documented::<payments::__path_sandbox_pay>(|r| {
            r.route(web::post().to(payments::sandbox_pay))
        }),
        documented::<payments::__path_sandbox_messages>(|r| {
            r.route(web::get().to(payments::sandbox_messages))
        }),
        documented::<payments::__path_sandbox_fail_sends>(|r| {
            r.route(web::post().to(payments::sandbox_fail_sends))
        }),
        documented::<uploads::__path_upload>(|r| r.route(web::post().to(uploads::upload))),
        documented::<uploads::__path_photo>(|r| r.route(web::get().to(uploads::photo))),
        documented::<outreach::__path_file>(|r| r.route(web::get().to(outreach::file))),
        documented::<ops::__path_metrics>(|r| r.route(web::get().to(ops::metrics))),
        documented::<ops::__path_healthz>(|r| r.route(web::get().to(ops::healthz))),
        documented::<ops::__path_readyz>(|r| r.route(web::get().to(ops::readyz))),
        documented::<admin::__path_map>(|r| r.route(web::get().to(admin::map))),
        documented::<admin::__path_live>(|r| r.route(web::get().to(admin::live))),
        documented::<admin::__path_today>(|r| r.route(web::get().to(admin::today))),
        documented::<admin::__path_search>(|r| r.route(web::get().to(admin::search))),
        documented::<admin::__path_refund>(|r| r.route(web::post().to(admin::refund))),
        documented::<admin::__path_settle>(|r| r.route(web::post().to(admin::settle))),
        documented::<admin::__path_reassign>(|r| r.route(web::post().to(admin::reassign))),
        documented::<admin::__path_force_offline>(|r| {
            r.route(web::post().to(admin::force_offline))
        }),
        documented::<trust::__path_couriers>(|r| r.route(web::get().to(trust::couriers))),
        documented::<trust::__path_approve_courier>(|r| {
            r.route(web::post().to(trust::approve_courier))
        }),
        documented::<trust::__path_reject_courier>(|r| {
            r.route(web::post().to(trust::reject_courier))
        }),
        documented::<trust::__path_suspend_courier>(|r| {
            r.route(web::post().to(trust::suspend_courier))
        }),
        documented::<trust::__path_reinstate_courier>(|r| {
            r.route(web::post().to(trust::reinstate_courier))
        }),
        documented::<trust::__path_block_user>(|r| r.route(web::post().to(trust::block_user))),
        documented::<trust::__path_unblock_user>(|r| r.route(web::post().to(trust::unblock_user))),
        documented::<operators::__path_me>(|r| r.route(web::get().to(operators::me))),
        documented::<operators::__path_operators>(|r| {
            r.route(web::get().to(operators::operators))
                .route(web::post().to(operators::add_operator))
        }),
        documented::<operators::__path_revoke_operator>(|r| {
            r.route(web::post().to(operators::revoke_operator))
        }),
        plain("/admin", |r| r.route(web::get().to(admin::console))),
        plain("/docs", |r| r.route(web::get().to(ops::docs_redirect))),
        plain("/openapi.json", |r| r.route(web::get().to(openapi::spec))),
        plain("/docs/{file:.*}", |r| r.route(web::get().to(openapi::docs))),
    ];
    // Stable: within each group the order above is kept (`/orders/open`
    // before `/orders/{id}`).
    routes.sort_by_key(|(path, _)| path.contains('{'));
    routes.into_iter().map(|(_, r)| r).collect()
}

/// The application: every route, registered here and only here.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    // Without `http.rate_limit` (the default) the limiter is not in the
    // request path at all.
    let limited = state.rate_limits.is_some();
    App::new()
        .app_data(web::Data::new(state))
        .app_data(
            web::QueryConfig::default().error_handler(|e, _| {
                ApiError::BadRequest(format!("bad query string: {e}")).into()
            }),
        )
        .app_data(
            web::PathConfig::default()
                .error_handler(|_, _| ApiError::NotFound("not found".into()).into()),
        )
        .wrap(actix_web::middleware::Condition::new(
            limited,
            from_fn(limits::rate_limit),
        ))
        .wrap(from_fn(telemetry::observe))
        .service(routes())
        .default_service(web::to(ops::not_found))
}

/// A built, bound, not yet running service.
pub struct Application {
    server: Server,
    port: u16,
    store: Engine,
}

impl Application {
    /// Starts everything with the client `settings` ask for.
    pub fn build(settings: &Settings) -> Result<Self, StartupError> {
        let wechat = wechat_client(settings)?;
        Self::build_with(settings, wechat)
    }

    /// Starts everything with a given WeChat client (tests).
    pub fn build_with(settings: &Settings, wechat: WeChatClients) -> Result<Self, StartupError> {
        let listener =
            TcpListener::bind(&settings.http.bind).map_err(|source| StartupError::Bind {
                addr: settings.http.bind.clone(),
                source,
            })?;
        let bound = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.http.bind.clone(),
            source,
        })?;
        let port = bound.port();
        let services = start_services(settings, wechat, &notify_base(settings, bound))?;
        let state = services.state.clone();
        let server = HttpServer::new(move || app(state.clone()))
            .workers(settings.http_workers())
            .shutdown_timeout(settings.http.shutdown_timeout.as_secs().max(1))
            .listen(listener)
            .map_err(|source| StartupError::Bind {
                addr: settings.http.bind.clone(),
                source,
            })?
            .run();
        Ok(Self {
            server,
            port,
            store: services.store,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM/SIGINT, drains in-flight requests, flushes sled.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await?;
        let store = self.store;
        tokio::task::spawn_blocking(move || store.flush_blocking())
            .await
            .map_err(std::io::Error::other)?
            .map_err(std::io::Error::other)?;
        tracing::info!("stopped; storage flushed");
        Ok(())
    }
}

/// `lastmile reconcile --date YYYY-MM-DD`: reconciles one China day
/// against the configured WeChat Pay, on the configured storage (which a
/// running service holds: then ask it, `POST /api/v1/admin/reconciliation`).
/// Must run inside an actix `System`.
pub async fn reconcile_day(
    settings: &Settings,
    day: ChinaDay,
) -> Result<lastmile_actors::domain::Reconciliation, String> {
    let wechat = wechat_client(settings).map_err(|e| e.to_string())?;
    let store = settings.storage.open().map_err(|e| {
        format!(
            "{e} (is lastmile running on {}? then ask it: POST /api/v1/admin/reconciliation?date={day})",
            settings.storage.location()
        )
    })?;
    let at = settings
        .money
        .reconcile_time()
        .ok_or("money.reconcile_at is not a time of day")?;
    let ledger = Ledger::start(
        store.ledger_repo(),
        LedgerConfig {
            commission: commission_of(
                settings,
                &Campuses::load(&settings.campus.map).map_err(|e| e.to_string())?,
            ),
        },
        settings.money.rules(),
        None,
        Some(Reconciler {
            wechat: wechat.client,
            at,
        }),
    )
    .map_err(|e| e.to_string())?;
    let report = ledger
        .reconcile(day)
        .await
        .map_err(|e| lastmile_actors::errors::chain(&e))?;
    store.flush_blocking().map_err(|e| e.to_string())?;
    Ok(report)
}
