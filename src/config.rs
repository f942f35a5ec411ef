//! Settings: `config/default.toml`, then `--config FILE`, then
//! `$CREDENTIALS_DIRECTORY/secrets.toml` (systemd's `LoadCredential=`),
//! then `LASTMILE__SECTION__KEY` environment variables.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lastmile_actors::storage::postgres::masked_url;
use lastmile_actors::storage::{Engine, StorageError};
use lastmile_actors::wechat::WeChatConfig;
use serde::Deserialize;

/// Where the defaults live, relative to the working directory.
pub const DEFAULT_CONFIG: &str = "config/default.toml";

/// Every setting of the service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The HTTP listener.
    pub http: HttpSettings,
    /// The sled database.
    pub storage: StorageSettings,
    /// The campus map.
    pub campus: CampusSettings,
    /// Order timers and sharding.
    pub orders: OrderSettings,
    /// Courier matching.
    pub dispatch: DispatchSettings,
    /// WeChat mini-program and WeChat Pay.
    pub wechat: WeChatConfig,
    /// Object storage for share codes.
    pub objects: ObjectSettings,
    /// Customer messages.
    pub messages: MessageSettings,
    /// Qiniu credentials (when `objects.backend = "qiniu"`).
    #[serde(default)]
    pub qiniu: QiniuSettings,
    /// The operator console and admin API.
    #[serde(default)]
    pub admin: AdminSettings,
    /// Couriers' earnings and the platform's commission.
    #[serde(default)]
    pub money: MoneySettings,
    /// Courier review and give-back limits.
    #[serde(default)]
    pub couriers: CourierSettings,
    /// Photo uploads.
    #[serde(default)]
    pub uploads: UploadSettings,
    /// Log output.
    #[serde(default)]
    pub log: LogSettings,
}

/// The secrets file systemd hands over with `LoadCredential=secrets.toml:…`.
const CREDENTIAL_FILE: &str = "secrets.toml";

/// Shortest `admin.token` accepted.
const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// `[admin]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Bearer token of the operator console; unset turns it off (404).
    #[serde(default)]
    pub token: Option<lastmile_actors::wechat::Secret>,
}

/// `[couriers]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CourierSettings {
    /// Operators approve couriers before they work; false approves every
    /// applicant at once.
    pub review: bool,
    /// Orders a courier may give back per China day.
    pub releases_per_day: u32,
}

impl Default for CourierSettings {
    fn default() -> Self {
        Self {
            review: true,
            releases_per_day: 3,
        }
    }
}

/// `[uploads]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadSettings {
    /// Photos one user may store per China day (429 past it).
    pub per_day: u32,
}

impl Default for UploadSettings {
    fn default() -> Self {
        Self { per_day: 100 }
    }
}

/// `[money]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoneySettings {
    /// The platform's share of a completed order's fee, in percent (the tip
    /// is the courier's whole), 0–100.
    pub commission_percent: u8,
    /// The smallest withdrawal, in fen.
    pub min_withdrawal_fen: u32,
    /// The most one courier may withdraw per China day, in fen.
    pub daily_withdrawal_fen: u32,
    /// Operators approve each withdrawal before it is paid.
    pub withdrawal_review: bool,
    /// `transfer` (WeChat Pay 商家转账) or `manual` (an operator pays).
    pub payout: PayoutSetting,
    /// When the day before is reconciled with WeChat Pay's bill, `HH:MM`
    /// China time.
    pub reconcile_at: String,
}

/// `money.payout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutSetting {
    /// WeChat Pay's 商家转账 (API v3).
    Transfer,
    /// An operator pays by hand and marks the withdrawal paid.
    Manual,
}

impl Default for MoneySettings {
    fn default() -> Self {
        Self {
            commission_percent: 10,
            min_withdrawal_fen: 100,
            daily_withdrawal_fen: 50_000,
            withdrawal_review: true,
            payout: PayoutSetting::Transfer,
            reconcile_at: "10:00".into(),
        }
    }
}

impl MoneySettings {
    /// `reconcile_at` as a time of day (China time).
    pub fn reconcile_time(&self) -> Option<time::Time> {
        let (h, m) = self.reconcile_at.split_once(':')?;
        let (h, m) = (h.parse::<u8>().ok()?, m.parse::<u8>().ok()?);
        (h < 24 && m < 60)
            .then(|| time::Time::from_hms(h, m, 0).ok())
            .flatten()
    }

    /// The ledger's withdrawal rules.
    pub fn rules(&self) -> lastmile_actors::ledger::WithdrawalRules {
        lastmile_actors::ledger::WithdrawalRules {
            min_fen: self.min_withdrawal_fen,
            daily_fen: self.daily_withdrawal_fen,
            review: self.withdrawal_review,
            payout: match self.payout {
                PayoutSetting::Transfer => lastmile_actors::ledger::Payout::Transfer,
                PayoutSetting::Manual => lastmile_actors::ledger::Payout::Manual,
            },
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    #[serde(default)]
    pub format: LogFormat,
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to listen on; port 0 picks a free port.
    pub bind: String,
    /// HTTP worker threads; 0 means one per core.
    #[serde(default)]
    pub workers: usize,
    /// How long SIGTERM waits for in-flight requests.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Requests per second per client; unset means no limit.
    #[serde(default)]
    pub rate_limit: Option<u32>,
    /// Addresses whose `X-Forwarded-For` is believed (the reverse proxy).
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Failed admin sign-ins (and, apart, refused WeChat callbacks) one
    /// address may make in a minute, in a burst, before it gets 429 there.
    #[serde(default = "default_failed_attempts")]
    pub failed_attempts_per_minute: u32,
}

fn default_failed_attempts() -> u32 {
    10
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// The sled directory.
    pub path: PathBuf,
    /// Group commit: at most one flush starts per window; writers that
    /// arrive meanwhile share it. Longer windows trade latency for CPU.
    #[serde(with = "humantime_serde")]
    pub commit_window: Duration,
    /// `sled` (embedded, the default) or `postgres`.
    #[serde(default)]
    pub engine: EngineSetting,
    /// `[storage.postgres]`
    #[serde(default)]
    pub postgres: PostgresSettings,
}

/// `storage.engine`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineSetting {
    /// One directory, one process.
    #[default]
    Sled,
    /// A PostgreSQL database.
    Postgres,
}

/// `[storage.postgres]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSettings {
    /// `postgres://user:password@host:port,host2:port/db?target_session_attrs=read-write`
    /// (it may hold a password: never logged).
    pub url: Option<lastmile_actors::wechat::Secret>,
    /// Connections in the pool.
    #[serde(default = "default_pool")]
    pub pool: usize,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self {
            url: None,
            pool: default_pool(),
        }
    }
}

fn default_pool() -> usize {
    16
}

impl StorageSettings {
    /// Opens the configured engine. A database that cannot be reached is
    /// named by its URL, password masked.
    pub fn open(&self) -> Result<Engine, OpenError> {
        match (self.engine, &self.postgres.url) {
            (EngineSetting::Sled, _) => {
                Engine::sled(&self.path, self.commit_window).map_err(OpenError::Sled)
            }
            (EngineSetting::Postgres, Some(url)) => {
                Engine::postgres(url.expose(), self.postgres.pool).map_err(|source| {
                    OpenError::Postgres {
                        url: masked_url(url.expose()),
                        source,
                    }
                })
            }
            (EngineSetting::Postgres, None) => Err(OpenError::NoUrl),
        }
    }

    /// Where the store is, for messages (a PostgreSQL URL masked).
    pub fn location(&self) -> String {
        match (self.engine, &self.postgres.url) {
            (EngineSetting::Postgres, Some(url)) => masked_url(url.expose()),
            _ => self.path.display().to_string(),
        }
    }
}

/// Why the configured store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The sled directory could not be opened.
    #[error("cannot open storage.path: {0}")]
    Sled(#[source] StorageError),
    /// The database could not be reached or migrated.
    #[error("cannot reach the database at storage.postgres.url = {url}: {source}")]
    Postgres {
        /// The URL, password masked.
        url: String,
        /// Why.
        #[source]
        source: StorageError,
    },
    /// `storage.engine = "postgres"` without a URL.
    #[error("storage.engine = \"postgres\" needs storage.postgres.url")]
    NoUrl,
}

/// `[campus]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampusSettings {
    /// The campus map file.
    pub map: PathBuf,
}

/// `[orders]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSettings {
    /// Unpaid orders are cancelled after this.
    #[serde(with = "humantime_serde")]
    pub payment_timeout: Duration,
    /// Delivered orders complete themselves after this.
    #[serde(with = "humantime_serde")]
    pub auto_confirm: Duration,
    /// Number of order shards; 0 means one per core.
    #[serde(default)]
    pub shards: usize,
    /// Orders one customer may have awaiting payment at once.
    #[serde(default = "default_max_unpaid")]
    pub max_unpaid: u32,
    /// Whether a hand-over needs a photo.
    #[serde(default)]
    pub delivery_photo: DeliveryPhoto,
    /// A paid order nobody has taken: its customer is told after this…
    #[serde(with = "humantime_serde", default = "default_untaken_notice_after")]
    pub untaken_notice_after: Duration,
    /// … and it is refunded after this (both counted from the payment).
    #[serde(with = "humantime_serde", default = "default_untaken_refund_after")]
    pub untaken_refund_after: Duration,
}

/// `orders.delivery_photo`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryPhoto {
    /// A courier may add a photo at `deliver`.
    #[default]
    Optional,
    /// Every `deliver` needs one (400 without).
    Required,
}

fn default_max_unpaid() -> u32 {
    10
}

fn default_untaken_notice_after() -> Duration {
    Duration::from_secs(30 * 60)
}

fn default_untaken_refund_after() -> Duration {
    Duration::from_secs(3 * 3600)
}

/// `[dispatch]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchSettings {
    /// Time between matching rounds.
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
    /// Open tasks a courier may hold.
    pub max_tasks: u32,
    /// Offline time after which a courier's tasks go back to the pool.
    #[serde(with = "humantime_serde")]
    pub reassign_after: Duration,
    /// Match automatically (true) or leave orders to grab (false).
    pub auto: bool,
    /// A courier with no online or location call for this long is offline.
    #[serde(with = "humantime_serde", default = "default_presence_ttl")]
    pub presence_ttl: Duration,
    /// Courier speed in metres per minute.
    #[serde(default = "default_speed")]
    pub speed: f64,
    /// Time spent at each pickup stop.
    #[serde(with = "humantime_serde", default = "default_service")]
    pub pickup_service: Duration,
    /// Time spent at each drop-off stop.
    #[serde(with = "humantime_serde", default = "default_service")]
    pub dropoff_service: Duration,
    /// Click-to-door target.
    #[serde(with = "humantime_serde", default = "default_target")]
    pub target: Duration,
    /// Click-to-door never to exceed where avoidable.
    #[serde(with = "humantime_serde", default = "default_max")]
    pub max: Duration,
}

fn default_presence_ttl() -> Duration {
    Duration::from_secs(5 * 60)
}

fn default_speed() -> f64 {
    200.0
}

fn default_service() -> Duration {
    Duration::from_secs(2 * 60)
}

fn default_target() -> Duration {
    Duration::from_secs(40 * 60)
}

fn default_max() -> Duration {
    Duration::from_secs(90 * 60)
}

/// `[messages]`: template ids (subscribe and template messages) per event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSettings {
    /// Template for "a courier took your order".
    pub template_assigned: String,
    /// Template for "your goods are picked up".
    pub template_picked_up: String,
    /// Template for "delivered".
    pub template_delivered: String,
    /// Template for "refunded".
    pub template_refunded: String,
    /// Template for "nobody has taken your order yet".
    #[serde(default = "default_template_untaken")]
    pub template_untaken: String,
    /// Messages not sent within this are dropped.
    #[serde(with = "humantime_serde")]
    pub expire_after: Duration,
    /// Share codes one user may have made per day (429 past it).
    #[serde(default = "default_share_codes_per_day")]
    pub share_codes_per_day: u32,
}

fn default_template_untaken() -> String {
    "SANDBOX_TPL_UNTAKEN".into()
}

fn default_share_codes_per_day() -> u32 {
    50
}

/// `[objects]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectSettings {
    /// Where uploads and share images are kept.
    pub backend: ObjectBackend,
    /// Directory of the local backend, served under `/files/`.
    pub local_dir: PathBuf,
}

/// `objects.backend`: where uploads and share images are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectBackend {
    /// Files beside the store, served under `/files/`.
    Local,
    /// A Qiniu bucket (`[qiniu]`).
    Qiniu,
}

/// `[qiniu]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QiniuSettings {
    /// Access key.
    #[serde(default)]
    pub access_key: Option<String>,
    /// Secret key (never logged).
    #[serde(default)]
    pub secret_key: Option<lastmile_actors::wechat::Secret>,
    /// Bucket name.
    #[serde(default)]
    pub bucket: Option<String>,
    /// Form-upload host.
    #[serde(default)]
    pub upload_url: Option<String>,
    /// The bucket's public HTTPS domain.
    #[serde(default)]
    pub public_base: Option<String>,
}

/// A configuration that cannot be used; printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file is missing or a value is wrong.
    #[error("{0}")]
    Load(#[from] config::ConfigError),
    /// A value parses but breaks a rule.
    #[error("{0}")]
    Invalid(String),
}

impl Settings {
    /// Loads the defaults, an optional extra file, the systemd credential
    /// file when there is one, and the environment.
    pub fn load(extra: Option<&Path>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from(Path::new(DEFAULT_CONFIG)).required(true));
        if let Some(path) = extra {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        // Set by systemd only when the unit loads credentials (it refuses
        // to start the unit when the named source file is missing).
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let file = Path::new(&dir).join(CREDENTIAL_FILE);
            builder = builder.add_source(
                config::File::from(file)
                    .format(config::FileFormat::Toml)
                    .required(false),
            );
        }
        let settings: Settings = builder
            .add_source(
                config::Environment::with_prefix("LASTMILE")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.orders.payment_timeout.is_zero() {
            return invalid("orders.payment_timeout must be greater than zero");
        }
        if self.wechat.api_key.expose().len() != 32 {
            return invalid("wechat.api_key must be 32 characters");
        }
        if self.wechat.mode == lastmile_actors::wechat::Mode::Live {
            self.wechat.check_live().map_err(ConfigError::Invalid)?;
            if self.money.payout == PayoutSetting::Transfer {
                self.wechat
                    .check_live_transfers()
                    .map_err(ConfigError::Invalid)?;
            }
        }
        if !(self.dispatch.speed.is_finite() && self.dispatch.speed > 0.0) {
            return invalid("dispatch.speed must be a positive number of metres per minute");
        }
        if self.dispatch.max_tasks == 0 {
            return invalid("dispatch.max_tasks must be at least 1");
        }
        if self.dispatch.presence_ttl.is_zero() {
            return invalid("dispatch.presence_ttl must be greater than zero");
        }
        if self.dispatch.target.is_zero() || self.dispatch.max < self.dispatch.target {
            return invalid(
                "dispatch.target must be positive and dispatch.max at least dispatch.target",
            );
        }
        if let Some(token) = &self.admin.token {
            // The console can refund any order: a guessable token is refused.
            if token.expose().chars().count() < MIN_ADMIN_TOKEN_CHARS {
                return invalid(
                    "admin.token must be at least 16 characters (or unset to turn the console off)",
                );
            }
        }
        if self.money.commission_percent > 100 {
            return invalid("money.commission_percent must be between 0 and 100");
        }
        if self.money.reconcile_time().is_none() {
            return invalid(
                "money.reconcile_at must be a time of day such as \"10:00\" (China time)",
            );
        }
        if self.money.min_withdrawal_fen == 0
            || self.money.daily_withdrawal_fen < self.money.min_withdrawal_fen
        {
            return invalid(
                "money.min_withdrawal_fen must be at least 1 and money.daily_withdrawal_fen at least that",
            );
        }
        if self.objects.backend == ObjectBackend::Qiniu && self.qiniu_config().is_none() {
            return invalid(
                "objects.backend = \"qiniu\" needs qiniu.access_key, secret_key, bucket, upload_url and public_base",
            );
        }
        Ok(())
    }

    /// Qiniu's settings when every one is present.
    pub fn qiniu_config(&self) -> Option<lastmile_actors::objects::QiniuConfig> {
        let q = &self.qiniu;
        Some(lastmile_actors::objects::QiniuConfig {
            access_key: q.access_key.clone()?,
            secret_key: q.secret_key.clone()?,
            bucket: q.bucket.clone()?,
            upload_url: q.upload_url.clone()?,
            public_base: q.public_base.clone()?,
        })
    }

    /// Order shards to run: the setting, or one per core.
    pub fn order_shards(&self) -> usize {
        if self.orders.shards > 0 {
            self.orders.shards
        } else {
            cores()
        }
    }

    /// HTTP workers to run: the setting, or one per core.
    pub fn http_workers(&self) -> usize {
        if self.http.workers > 0 {
            self.http.workers
        } else {
            cores()
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
