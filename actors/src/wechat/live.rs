//! The live WeChat client: reqwest with rustls against configurable base URLs.

use std::time::Duration;

use async_trait::async_trait;

use super::pay_api::{PayApi, PayTransport};
use super::{Code2SessionReply, Secret, WeChat, WeChatConfig, WeChatError, WxSession};

/// How long one WeChat call may take before it counts as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP client for the real WeChat APIs.
pub struct LiveWeChat {
    http: reqwest::Client,
    api_base: String,
    appid: String,
    secret: Secret,
    pay: PayApi<HttpPayTransport>,
}

/// WeChat Pay over HTTPS; refunds use the merchant certificate (mutual TLS).
pub struct HttpPayTransport {
    http: reqwest::Client,
    cert_http: Option<reqwest::Client>,
    base: String,
}

impl HttpPayTransport {
    fn new(config: &WeChatConfig, http: reqwest::Client) -> Result<Self, WeChatError> {
        let cert_http = match (&config.cert_path, &config.key_path) {
            (Some(cert), Some(key)) => {
                let read = |p: &str| {
                    std::fs::read(p)
                        .map_err(|e| WeChatError::Protocol(format!("cannot read {p}: {e}")))
                };
                let mut pem = read(cert)?;
                pem.push(b'\n');
                pem.extend(read(key)?);
                let identity = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| WeChatError::Protocol(format!("merchant certificate: {e}")))?;
                let client = reqwest::Client::builder()
                    .use_rustls_tls()
                    .identity(identity)
                    .timeout(CALL_TIMEOUT)
                    .build()
                    .map_err(super::unreachable)?;
                Some(client)
            }
            _ => None,
        };
        Ok(Self {
            http,
            cert_http,
            base: config.pay_base.trim_end_matches('/').to_owned(),
        })
    }
}

#[async_trait]
impl PayTransport for HttpPayTransport {
    async fn post(
        &self,
        path: &'static str,
        xml: String,
        with_cert: bool,
    ) -> Result<Vec<u8>, WeChatError> {
        let client = if with_cert {
            self.cert_http.as_ref().ok_or_else(|| {
                WeChatError::Protocol("refunds need wechat.cert_path and wechat.key_path".into())
            })?
        } else {
            &self.http
        };
        let request = client
            .post(format!("{}{}", self.base, path))
            .header("Content-Type", "text/xml")
            .body(xml);
        read_body(request).await
    }
}

/// Sends a request and reads the whole answer; no answer or a 5xx counts
/// as unreachable (WeChat answers its own errors with 200).
async fn read_body(request: reqwest::RequestBuilder) -> Result<Vec<u8>, WeChatError> {
    let response = request.send().await.map_err(super::unreachable)?;
    if response.status().is_server_error() {
        return Err(WeChatError::Unreachable(None));
    }
    let body = response.bytes().await.map_err(super::unreachable)?;
    Ok(body.to_vec())
}

impl LiveWeChat {
    /// A client for `config.api_base`.
    pub fn new(config: &WeChatConfig) -> Result<Self, WeChatError> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(CALL_TIMEOUT)
            .connect_timeout(CALL_TIMEOUT)
            .build()
            .map_err(super::unreachable)?;
        let pay = PayApi::new(
            HttpPayTransport::new(config, http.clone())?,
            config.pay_signer(),
        );
        Ok(Self {
            pay,
            http,
            api_base: config.api_base.trim_end_matches('/').to_owned(),
            appid: config.appid.clone(),
            secret: config.secret.clone(),
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        api: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, WeChatError> {
        let started = std::time::Instant::now();
        let result = self.get_json_inner(path, query).await;
        super::record_call(api, started, &result);
        result
    }

    async fn get_json_inner<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, WeChatError> {
        let url = format!("{}{}", self.api_base, path);
        self.send_json(self.http.get(url).query(query)).await
    }

    async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, WeChatError> {
        // jscode2session answers JSON labelled text/plain, so parse the bytes.
        let body = read_body(request).await?;
        serde_json::from_slice(&body).map_err(|e| WeChatError::Protocol(e.to_string()))
    }
}

#[async_trait]
impl WeChat for LiveWeChat {
    async fn code2session(&self, code: &str) -> Result<WxSession, WeChatError> {
        let reply: Code2SessionReply = self
            .get_json(
                "jscode2session",
                "/sns/jscode2session",
                &[
                    ("appid", self.appid.as_str()),
                    ("secret", self.secret.expose()),
                    ("js_code", code),
                    ("grant_type", "authorization_code"),
                ],
            )
            .await?;
        reply.into_session()
    }

    fn pay(&self) -> &dyn super::WeChatPay {
        &self.pay
    }

    async fn send_subscribe(
        &self,
        access_token: &str,
        message: &super::OutgoingMessage,
    ) -> Result<(), WeChatError> {
        let url = format!("{}/cgi-bin/message/subscribe/send", self.api_base);
        let reply: super::ErrorReply = self
            .send_json(
                self.http
                    .post(url)
                    .query(&[("access_token", access_token)])
                    .json(message),
            )
            .await?;
        super::errcode_result(reply)
    }

    async fn send_template(
        &self,
        access_token: &str,
        message: &super::OutgoingMessage,
        form_id: &str,
    ) -> Result<(), WeChatError> {
        let mut body =
            serde_json::to_value(message).map_err(|e| WeChatError::Protocol(e.to_string()))?;
        body["form_id"] = form_id.into();
        let url = format!("{}/cgi-bin/message/wxopen/template/send", self.api_base);
        let reply: super::ErrorReply = self
            .send_json(
                self.http
                    .post(url)
                    .query(&[("access_token", access_token)])
                    .json(&body),
            )
            .await?;
        super::errcode_result(reply)
    }

    async fn msg_sec_check(
        &self,
        access_token: &str,
        openid: &str,
        scene: super::ContentScene,
        content: &str,
    ) -> Result<super::ContentVerdict, WeChatError> {
        let started = std::time::Instant::now();
        let url = format!("{}/wxa/msg_sec_check", self.api_base);
        let body = serde_json::json!({
            "content": content,
            "version": 2,
            "scene": scene.code(),
            "openid": openid,
        });
        let result = self
            .send_json::<MsgSecCheckReply>(
                self.http
                    .post(url)
                    .query(&[("access_token", access_token)])
                    .json(&body),
            )
            .await
            .and_then(MsgSecCheckReply::into_verdict);
        super::record_call("msg_sec_check", started, &result);
        result
    }

    async fn upload_shipping_info(
        &self,
        access_token: &str,
        report: &super::ShippingReport,
    ) -> Result<(), WeChatError> {
        let started = std::time::Instant::now();
        let url = format!("{}/wxa/sec/order/upload_shipping_info", self.api_base);
        let result = self
            .send_json::<super::ErrorReply>(
                self.http
                    .post(url)
                    .query(&[("access_token", access_token)])
                    .json(report),
            )
            .await
            .and_then(super::errcode_result);
        super::record_call("upload_shipping_info", started, &result);
        result
    }

    async fn wxacode_unlimited(
        &self,
        access_token: &str,
        scene: &str,
        page: &str,
    ) -> Result<Vec<u8>, WeChatError> {
        let mut body = serde_json::json!({ "scene": scene, "check_path": false });
        if !page.is_empty() {
            body["page"] = page.into();
        }
        let response = self
            .http
            .post(format!("{}/wxa/getwxacodeunlimit", self.api_base))
            .query(&[("access_token", access_token)])
            .json(&body)
            .send()
            .await
            .map_err(super::unreachable)?;
        if response.status().is_server_error() {
            return Err(WeChatError::Unreachable(None));
        }
        let json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(super::is_json_media_type);
        let bytes = response.bytes().await.map_err(super::unreachable)?;
        if json {
            let reply: super::ErrorReply =
                serde_json::from_slice(&bytes).map_err(|e| WeChatError::Protocol(e.to_string()))?;
            return Err(reply.into_error());
        }
        Ok(bytes.to_vec())
    }

    async fn fetch_access_token(&self, stable: bool) -> Result<super::AccessToken, WeChatError> {
        let started = std::time::Instant::now();
        let reply: Result<super::TokenReply, WeChatError> = if stable {
            let body = serde_json::json!({
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self.secret.expose(),
                "force_refresh": false,
            });
            self.send_json(
                self.http
                    .post(format!("{}/cgi-bin/stable_token", self.api_base))
                    .json(&body),
            )
            .await
        } else {
            self.send_json(
                self.http
                    .get(format!("{}/cgi-bin/token", self.api_base))
                    .query(&[
                        ("grant_type", "client_credential"),
                        ("appid", self.appid.as_str()),
                        ("secret", self.secret.expose()),
                    ]),
            )
            .await
        };
        let result = reply.and_then(super::TokenReply::into_token);
        super::record_call("token", started, &result);
        result
    }
}

/// msgSecCheck's answer: `{"errcode", "errmsg", "result": {"suggest", "label"}}`.
#[derive(Debug, serde::Deserialize)]
struct MsgSecCheckReply {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    result: Option<MsgSecCheckResult>,
}

#[derive(Debug, serde::Deserialize)]
struct MsgSecCheckResult {
    suggest: String,
}

impl MsgSecCheckReply {
    fn into_verdict(self) -> Result<super::ContentVerdict, WeChatError> {
        if self.errcode != 0 {
            return Err(WeChatError::Api {
                errcode: self.errcode,
                errmsg: self.errmsg,
            });
        }
        self.result
            .map(|r| super::ContentVerdict::parse(&r.suggest))
            .ok_or_else(|| WeChatError::Protocol("msg_sec_check answered no result".into()))
    }
}
