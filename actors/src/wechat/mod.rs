//! WeChat clients: the trait the actors call, the in-process sandbox and the
//! live HTTP client. Only this module speaks WeChat's wire formats.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::OpenId;

pub mod bill;
mod config;
pub mod live;
pub mod notify;
pub mod pay;
pub mod pay_api;
pub mod sandbox;
pub mod sandbox_pay;
pub mod sandbox_transfer;
mod shipping;
pub mod transfer;
pub mod v3;

pub use config::*;
pub use live::LiveWeChat;
pub use pay_api::{
    CloseOutcome, PaySigner, RefundRequest, RefundState, TradeState, UnifiedOrder, WeChatPay,
};
pub use sandbox::{SandboxWeChat, SentMessage};
pub use shipping::*;

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
