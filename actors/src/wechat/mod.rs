//! WeChat clients: the trait the actors call, the in-process sandbox and the
//! live HTTP client. Only this module speaks WeChat's wire formats.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::OpenId;

pub mod bill;
pub mod live;
pub mod notify;
pub mod pay;
pub mod pay_api;
pub mod sandbox;
pub mod sandbox_pay;
pub mod sandbox_transfer;
pub mod transfer;
pub mod v3;

pub use live::LiveWeChat;
pub use pay_api::{
    CloseOutcome, PaySigner, RefundRequest, RefundState, TradeState, UnifiedOrder, WeChatPay,
};
pub use sandbox::{SandboxWeChat, SentMessage};

/// A secret value (app secret, pay key): never printed, never logged.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for signing and API calls only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A transport failure without its URL: WeChat's query strings carry the
/// app secret and access tokens, and reqwest prints the URL in its errors.
pub(crate) fn unreachable(e: reqwest::Error) -> WeChatError {
    WeChatError::Unreachable(Some(e.without_url()))
}

/// The sandbox appid shipped in `config/default.toml` (public: never live).
pub const SANDBOX_APPID: &str = "wx0000000000sandbox";
/// The sandbox app secret shipped in `config/default.toml`.
pub const SANDBOX_SECRET: &str = "sandbox-app-secret";
/// The sandbox WeChat Pay key shipped in `config/default.toml`.
pub const SANDBOX_API_KEY: &str = "sandboxsandboxsandboxsandbox0000";

/// Which WeChat the service talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The in-process simulator (default; works offline).
    Sandbox,
    /// The real APIs at `api_base` / `pay_base`.
    Live,
}

/// Which algorithm signs WeChat Pay v2 messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SignType {
    /// MD5 (WeChat Pay's default).
    #[serde(rename = "MD5")]
    Md5,
    /// HMAC-SHA256.
    #[serde(rename = "HMAC-SHA256")]
    HmacSha256,
}

/// The `[wechat]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct WeChatConfig {
    /// sandbox or live.
    pub mode: Mode,
    /// The mini-program's appid.
    pub appid: String,
    /// The mini-program's app secret.
    pub secret: Secret,
    /// WeChat Pay merchant id.
    pub mch_id: String,
    /// WeChat Pay v2 API key (32 characters).
    pub api_key: Secret,
    /// Base URL of the mini-program APIs.
    pub api_base: String,
    /// Base URL of WeChat Pay.
    pub pay_base: String,
    /// The service's own URL as WeChat reaches it (for notify URLs).
    pub notify_base: String,
    /// Signature algorithm for WeChat Pay.
    pub sign_type: SignType,
    /// Use `cgi-bin/stable_token` (true) or `cgi-bin/token` for access tokens.
    #[serde(default = "default_true")]
    pub stable_token: bool,
    /// Merchant certificate (PEM), needed for refunds in live mode.
    #[serde(default)]
    pub cert_path: Option<String>,
    /// Merchant private key (PEM), needed for refunds in live mode.
    #[serde(default)]
    pub key_path: Option<String>,
    /// The WeChat Pay API v3 key (32 bytes): decrypts v3 callbacks.
    #[serde(default = "sandbox_api_v3_key")]
    pub api_v3_key: Secret,
    /// The merchant certificate's serial number (v3 request signatures).
    #[serde(default)]
    pub cert_serial: Option<String>,
    /// WeChat Pay's public key (PEM): verifies v3 answers and callbacks.
    #[serde(default)]
    pub pay_public_key_path: Option<String>,
    /// The id of that key (`PUB_KEY_ID_…`, sent as `Wechatpay-Serial`).
    #[serde(default)]
    pub pay_public_key_id: Option<String>,
    /// The 商家转账 scene the merchant was granted (1005: 佣金报酬).
    #[serde(default = "default_transfer_scene")]
    pub transfer_scene_id: String,
    /// Report each delivered order to WeChat's shipping-info service
    /// (发货信息管理, `upload_shipping_info`).
    #[serde(default)]
    pub shipping_info: bool,
}

fn sandbox_api_v3_key() -> Secret {
    Secret::new(sandbox_transfer::SANDBOX_API_V3_KEY)
}

fn default_transfer_scene() -> String {
    "1005".into()
}

fn default_true() -> bool {
    true
}

/// What jscode2session tells about a user.
#[derive(Debug, Clone)]
pub struct WxSession {
    /// The user's openid within this app.
    pub openid: OpenId,
    /// The session key (kept server side only).
    pub session_key: Secret,
    /// The unionid, when the app is bound to an open platform account.
    pub unionid: Option<String>,
}

/// A failed WeChat call.
#[derive(Debug, thiserror::Error)]
pub enum WeChatError {
    /// The login code was rejected (invalid, used, or the user is blocked).
    #[error("WeChat rejected the login code (errcode {0})")]
    InvalidCode(i64),
    /// WeChat answered with an error code.
    #[error("WeChat API error {errcode}: {errmsg}")]
    Api {
        /// WeChat's errcode.
        errcode: i64,
        /// WeChat's errmsg.
        errmsg: String,
    },
    /// No answer (connection refused, timeout, 5xx).
    #[error("WeChat is unreachable")]
    Unreachable(#[source] Option<reqwest::Error>),
    /// An answer that does not parse.
    #[error("WeChat answered something unexpected: {0}")]
    Protocol(String),
    /// WeChat Pay refused the call (`err_code`, or FAIL with `return_msg`).
    #[error("WeChat Pay error {code}: {message}")]
    Pay {
        /// `err_code` (or FAIL).
        code: String,
        /// `err_code_des` or `return_msg`.
        message: String,
    },
}

impl WeChatError {
    /// errcodes meaning "this access_token is no good" (expired, invalid,
    /// or replaced by a newer one).
    const INVALID_TOKEN: [i64; 3] = [40001, 42001, 40014];
    /// errcodes meaning the form_id is invalid, used or expired.
    const FORM_ID_SPENT: [i64; 3] = [41028, 41029, 41030];
    /// errcode: the user refused this subscribe template.
    const REFUSED_BY_USER: i64 = 43101;

    fn errcode(&self) -> Option<i64> {
        match self {
            WeChatError::Api { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }

    /// The access_token used was refused: refresh it and call again.
    pub fn is_invalid_token(&self) -> bool {
        self.errcode()
            .is_some_and(|c| Self::INVALID_TOKEN.contains(&c))
    }

    /// The form_id used is spent: try the next one.
    pub fn is_form_id_spent(&self) -> bool {
        self.errcode()
            .is_some_and(|c| Self::FORM_ID_SPENT.contains(&c))
    }

    /// The user refused this subscribe template: never retry.
    pub fn is_refused_by_user(&self) -> bool {
        self.errcode() == Some(Self::REFUSED_BY_USER)
    }
}

/// Where a checked text is shown (msgSecCheck's `scene`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentScene {
    /// A profile field (1, 资料): a courier's name.
    Profile,
    /// A comment (2, 评论): order notes and details, dispute texts.
    Comment,
}

impl ContentScene {
    /// WeChat's number for it.
    pub fn code(self) -> u8 {
        match self {
            ContentScene::Profile => 1,
            ContentScene::Comment => 2,
        }
    }
}

/// What WeChat's content check made of a text (`result.suggest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentVerdict {
    /// Nothing wrong.
    Pass,
    /// Perhaps wrong: accepted, and shown to operators.
    Review,
    /// Refused.
    Risky,
}

impl ContentVerdict {
    /// Parses `result.suggest`; anything unknown is looked at by a person.
    pub fn parse(suggest: &str) -> Self {
        match suggest {
            "pass" => ContentVerdict::Pass,
            "risky" => ContentVerdict::Risky,
            _ => ContentVerdict::Review,
        }
    }
}

/// One delivered order as WeChat's shipping-info service takes it: by the
/// merchant's order number, 同城配送 (logistics_type 2), one parcel
/// (delivery_mode 1), with the payer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShippingReport {
    /// `order_key`: `order_number_type` 1 (mchid + out_trade_no).
    pub order_key: ShippingOrderKey,
    /// 2: 同城配送.
    pub logistics_type: u8,
    /// 1: UNIFIED_DELIVERY.
    pub delivery_mode: u8,
    /// One entry: what was delivered.
    pub shipping_list: Vec<ShippingItem>,
    /// RFC 3339 with milliseconds and +08:00, as WeChat's examples show.
    pub upload_time: String,
    /// The payer.
    pub payer: ShippingPayer,
}

/// `order_key` of a shipping report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShippingOrderKey {
    /// 1: the merchant's own order number.
    pub order_number_type: u8,
    /// The merchant id.
    pub mchid: String,
    /// The order id.
    pub out_trade_no: String,
}

/// One shipped item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShippingItem {
    /// What it was (≤ 120 characters).
    pub item_desc: String,
}

/// The payer of a shipping report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShippingPayer {
    /// Their openid.
    pub openid: String,
}

impl ShippingReport {
    /// The report of order `out_trade_no`, paid by `openid`, delivered.
    pub fn delivered(
        mchid: &str,
        out_trade_no: &str,
        openid: &str,
        item_desc: &str,
        at: time::OffsetDateTime,
    ) -> Self {
        Self {
            order_key: ShippingOrderKey {
                order_number_type: 1,
                mchid: mchid.to_owned(),
                out_trade_no: out_trade_no.to_owned(),
            },
            logistics_type: 2,
            delivery_mode: 1,
            shipping_list: vec![ShippingItem {
                item_desc: item_desc.to_owned(),
            }],
            upload_time: china_rfc3339_millis(at),
            payer: ShippingPayer {
                openid: openid.to_owned(),
            },
        }
    }
}

/// `2022-12-15T13:29:35.120+08:00`: China time, milliseconds.
fn china_rfc3339_millis(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(crate::domain::CHINA);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+08:00",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// What to do after a shipping report's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShippingOutcome {
    /// WeChat has it (now, or already: 10060002 delivered already,
    /// 10060003 re-delivery used, 10060023 nothing changed).
    Done,
    /// Busy or not there yet: ask again later (-1, 10060001 the payment
    /// not yet in WeChat's system, 10060012, 10060019, unreachable).
    Retry,
    /// Refused for good (a wrong state or field): an operator must look.
    GiveUp,
}

impl ShippingOutcome {
    /// Classifies a failed `upload_shipping_info`.
    pub fn of_error(error: &WeChatError) -> Self {
        match error {
            WeChatError::Api { errcode, .. } => match errcode {
                10060002 | 10060003 | 10060023 => ShippingOutcome::Done,
                -1 | 10060001 | 10060012 | 10060019 => ShippingOutcome::Retry,
                _ => ShippingOutcome::GiveUp,
            },
            WeChatError::Unreachable(_) => ShippingOutcome::Retry,
            _ => ShippingOutcome::GiveUp,
        }
    }
}

/// The WeChat APIs the actors use.
#[async_trait]
pub trait WeChat: Send + Sync + 'static {
    /// Exchanges a `wx.login` code for the user's openid (jscode2session).
    async fn code2session(&self, code: &str) -> Result<WxSession, WeChatError>;

    /// The WeChat Pay half: unifiedorder, orderquery, closeorder, refund.
    fn pay(&self) -> &dyn WeChatPay;

    /// A new access_token from `cgi-bin/stable_token` (when `stable`) or
    /// `cgi-bin/token`. Only the token refresher calls this.
    async fn fetch_access_token(&self, stable: bool) -> Result<AccessToken, WeChatError>;

    /// subscribeMessage.send.
    async fn send_subscribe(
        &self,
        access_token: &str,
        message: &OutgoingMessage,
    ) -> Result<(), WeChatError>;

    /// Template message (wxopen/template/send) with a form_id or prepay_id.
    async fn send_template(
        &self,
        access_token: &str,
        message: &OutgoingMessage,
        form_id: &str,
    ) -> Result<(), WeChatError>;

    /// msgSecCheck v2 (`wxa/msg_sec_check`) of one text written by `openid`.
    async fn msg_sec_check(
        &self,
        access_token: &str,
        openid: &str,
        scene: ContentScene,
        content: &str,
    ) -> Result<ContentVerdict, WeChatError>;

    /// upload_shipping_info (发货信息录入).
    async fn upload_shipping_info(
        &self,
        access_token: &str,
        report: &ShippingReport,
    ) -> Result<(), WeChatError>;

    /// getwxacodeunlimit: the mini-program code PNG for (scene, page).
    async fn wxacode_unlimited(
        &self,
        access_token: &str,
        scene: &str,
        page: &str,
    ) -> Result<Vec<u8>, WeChatError>;
}

/// Counts and times one WeChat call (the metrics every client shares).
pub(crate) fn record_call<T, E>(
    api: &'static str,
    started: std::time::Instant,
    result: &Result<T, E>,
) {
    metrics::histogram!("lastmile_wechat_call_seconds", "api" => api)
        .record(started.elapsed().as_secs_f64());
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!("lastmile_wechat_calls_total", "api" => api, "outcome" => outcome)
        .increment(1);
}

/// Is this Content-Type JSON? (wxacode answers errors as JSON with HTTP 200,
/// sometimes as `application/json; charset=UTF-8`.)
pub fn is_json_media_type(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// A WeChat JSON error answer (`{"errcode": ..., "errmsg": ...}`).
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorReply {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

impl ErrorReply {
    /// Always an error: a JSON answer where an image was expected.
    pub(crate) fn into_error(self) -> WeChatError {
        WeChatError::Api {
            errcode: if self.errcode == 0 { -1 } else { self.errcode },
            errmsg: self.errmsg,
        }
    }
}

/// A message to a user about one of their orders; it renders itself as
/// WeChat's subscribe/template message body (the template's field keys
/// live here, with the rest of WeChat's formats).
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    /// The recipient's openid.
    pub touser: String,
    /// The template.
    pub template_id: String,
    /// The page the message opens.
    pub page: String,
    /// The order it is about.
    pub order_id: String,
    /// What happened, in the customer's words (已接单, 已送达 …).
    pub update: String,
}

/// The wire shape of [`OutgoingMessage`].
#[derive(serde::Serialize)]
struct MessageWire<'a> {
    touser: &'a str,
    template_id: &'a str,
    page: &'a str,
    data: MessageFields<'a>,
}

/// The template's fields, as the templates are set up in the console.
#[derive(serde::Serialize)]
struct MessageFields<'a> {
    character_string1: FieldValue<'a>,
    phrase2: FieldValue<'a>,
}

#[derive(serde::Serialize)]
struct FieldValue<'a> {
    value: &'a str,
}

impl serde::Serialize for OutgoingMessage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MessageWire {
            touser: &self.touser,
            template_id: &self.template_id,
            page: &self.page,
            data: MessageFields {
                character_string1: FieldValue {
                    value: &self.order_id,
                },
                phrase2: FieldValue {
                    value: &self.update,
                },
            },
        }
        .serialize(s)
    }
}

/// Turns an `{"errcode", "errmsg"}` answer into Ok or the error.
pub(crate) fn errcode_result(reply: ErrorReply) -> Result<(), WeChatError> {
    if reply.errcode == 0 {
        Ok(())
    } else {
        Err(WeChatError::Api {
            errcode: reply.errcode,
            errmsg: reply.errmsg,
        })
    }
}

/// An access_token as WeChat hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The token.
    pub value: String,
    /// Seconds it lives.
    pub expires_in: u64,
}

/// The JSON of cgi-bin/token and cgi-bin/stable_token.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenReply {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

impl TokenReply {
    /// The token, or WeChat's error.
    pub(crate) fn into_token(self) -> Result<AccessToken, WeChatError> {
        if self.errcode != 0 {
            return Err(WeChatError::Api {
                errcode: self.errcode,
                errmsg: self.errmsg,
            });
        }
        match (self.access_token, self.expires_in) {
            (Some(value), Some(expires_in)) if !value.is_empty() => {
                Ok(AccessToken { value, expires_in })
            }
            _ => Err(WeChatError::Protocol(
                "token answer without access_token".into(),
            )),
        }
    }
}

impl WeChatConfig {
    /// Why live mode must not start with these settings (one line naming
    /// the key), or Ok. The sandbox credentials are public, so a live
    /// service on them would accept anyone's signed notify.
    pub fn check_live(&self) -> Result<(), String> {
        if self.appid.is_empty() || self.appid == SANDBOX_APPID {
            return Err(
                "wechat.appid still has its sandbox value; live mode needs the real appid".into(),
            );
        }
        if self.secret.expose().is_empty() || self.secret.expose() == SANDBOX_SECRET {
            return Err(
                "wechat.secret still has its sandbox value; live mode needs the real app secret"
                    .into(),
            );
        }
        if self.api_key.expose() == SANDBOX_API_KEY {
            return Err("wechat.api_key still has its sandbox value; live mode needs the merchant's API key".into());
        }
        if self.api_key.expose().chars().count() != 32 {
            return Err("wechat.api_key must be 32 characters".into());
        }
        if self.notify_base.trim().is_empty() {
            return Err("wechat.notify_base is empty; live mode needs the public HTTPS URL WeChat Pay reaches".into());
        }
        for (key, path) in [
            ("wechat.cert_path", &self.cert_path),
            ("wechat.key_path", &self.key_path),
        ] {
            let Some(path) = path.as_deref().filter(|p| !p.is_empty()) else {
                return Err(format!(
                    "{key} is unset; live mode needs the merchant certificate and key (PEM)"
                ));
            };
            if let Err(e) = std::fs::read(path) {
                return Err(format!("{key} = {path} cannot be read: {e}"));
            }
        }
        Ok(())
    }

    /// With transfers in live mode: the v3 keys are there and usable.
    pub fn check_live_transfers(&self) -> Result<(), String> {
        let v3 = self.api_v3_key.expose();
        if v3 == sandbox_transfer::SANDBOX_API_V3_KEY || v3.len() != 32 {
            return Err("wechat.api_v3_key is unset or its sandbox value; transfers (money.payout = \"transfer\") need the merchant's 32-byte API v3 key".into());
        }
        self.live_transfer_api().map(|_| ())
    }

    /// The live 商家转账 API, from the v3 keys.
    pub fn live_transfer_api(&self) -> Result<transfer::TransferApi, String> {
        let read = |key: &str, path: &Option<String>| -> Result<String, String> {
            let path = path
                .as_deref()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| format!("{key} is unset; transfers need it"))?;
            std::fs::read_to_string(path).map_err(|e| format!("{key} = {path} cannot be read: {e}"))
        };
        let serial = self.cert_serial.clone().filter(|s| !s.is_empty()).ok_or(
            "wechat.cert_serial is unset; transfers sign with the merchant certificate's serial",
        )?;
        let key_id = self
            .pay_public_key_id
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or(
                "wechat.pay_public_key_id is unset; transfers need the WeChat Pay public key's id",
            )?;
        let signer = v3::V3Signer::from_pem(
            &self.mch_id,
            &serial,
            &read("wechat.key_path", &self.key_path)?,
        )
        .map_err(|e| format!("wechat.key_path: {e}"))?;
        let verifier = v3::V3Verifier::from_pem(
            &key_id,
            &read("wechat.pay_public_key_path", &self.pay_public_key_path)?,
        )
        .map_err(|e| format!("wechat.pay_public_key_path: {e}"))?;
        Ok(transfer::TransferApi::new(
            std::sync::Arc::new(transfer::HttpTransport::new(&self.pay_base)),
            signer,
            verifier,
            self.api_v3_key.clone(),
        ))
    }

    /// The merchant's signer.
    pub fn pay_signer(&self) -> PaySigner {
        PaySigner {
            appid: self.appid.clone(),
            mch_id: self.mch_id.clone(),
            api_key: self.api_key.clone(),
            sign_type: self.sign_type,
        }
    }
}

/// jscode2session errcodes that mean "this code is no good", not "WeChat is down".
const INVALID_CODE_ERRCODES: [i64; 3] = [40029, 40163, 40226];

/// The JSON shape of jscode2session's answer.
#[derive(Debug, Deserialize)]
pub(crate) struct Code2SessionReply {
    #[serde(default)]
    openid: Option<String>,
    #[serde(default)]
    session_key: Option<String>,
    #[serde(default)]
    unionid: Option<String>,
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

impl Code2SessionReply {
    /// Turns the wire answer into a session or a typed error.
    pub(crate) fn into_session(self) -> Result<WxSession, WeChatError> {
        if INVALID_CODE_ERRCODES.contains(&self.errcode) {
            return Err(WeChatError::InvalidCode(self.errcode));
        }
        if self.errcode != 0 {
            return Err(WeChatError::Api {
                errcode: self.errcode,
                errmsg: self.errmsg,
            });
        }
        let openid = self
            .openid
            .as_deref()
            .and_then(|s| OpenId::parse(s).ok())
            .ok_or_else(|| {
                WeChatError::Protocol("jscode2session answered no valid openid".into())
            })?;
        Ok(WxSession {
            openid,
            session_key: Secret::new(self.session_key.unwrap_or_default()),
            unionid: self.unionid,
        })
    }
}

#[cfg(test)]
mod shipping_tests {
    use super::*;

    fn api(errcode: i64) -> WeChatError {
        WeChatError::Api {
            errcode,
            errmsg: String::new(),
        }
    }

    #[test]
    fn shipping_answers_are_done_retried_or_given_up() {
        for done in [10060002, 10060003, 10060023] {
            assert_eq!(ShippingOutcome::of_error(&api(done)), ShippingOutcome::Done);
        }
        for retry in [-1, 10060001, 10060012, 10060019] {
            assert_eq!(
                ShippingOutcome::of_error(&api(retry)),
                ShippingOutcome::Retry
            );
        }
        assert_eq!(
            ShippingOutcome::of_error(&WeChatError::Unreachable(None)),
            ShippingOutcome::Retry
        );
        for refused in [10060004, 10060005, 47001, 268485216] {
            assert_eq!(
                ShippingOutcome::of_error(&api(refused)),
                ShippingOutcome::GiveUp
            );
        }
    }

    #[test]
    fn a_report_is_same_city_one_parcel_by_merchant_order_number_in_china_time() {
        let at = time::macros::datetime!(2026-12-04 05:29:35.120 UTC);
        let report = ShippingReport::delivered("1900000109", "A1", "oPAYER", "校园跑腿配送", at);
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "order_key": {"order_number_type": 1, "mchid": "1900000109", "out_trade_no": "A1"},
                "logistics_type": 2,
                "delivery_mode": 1,
                "shipping_list": [{"item_desc": "校园跑腿配送"}],
                "upload_time": "2026-12-04T13:29:35.120+08:00",
                "payer": {"openid": "oPAYER"}
            })
        );
    }
}
