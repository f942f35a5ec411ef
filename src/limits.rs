//! `http.rate_limit`: requests per second per client (a hash of the bearer
//! token, else the address), answered 429 `rate_limited` beyond it. Off by
//! default. WeChat callbacks and operations endpoints are never limited.
//! `X-Forwarded-For` is believed only from `http.trusted_proxies` (anyone
//! else could name a fresh address per request and never be limited).

use std::net::IpAddr;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};

use crate::error::ApiError;
use crate::state::AppState;

/// Paths that are never limited: WeChat must always reach its callbacks,
/// and operators their probes.
const EXEMPT: [&str; 4] = ["/api/v1/wechat/", "/healthz", "/readyz", "/metrics"];

/// The middleware.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limits = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.rate_limits.clone());
    let exempt = EXEMPT.iter().any(|p| req.path().starts_with(p));
    if let (Some(limits), false) = (limits, exempt) {
        let trusted = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.trusted_proxies.clone())
            .unwrap_or_default();
        let forwarded = req
            .headers()
            .get_all(header::X_FORWARDED_FOR)
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let client = client_key(
            req.headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
            req.peer_addr().map(|a| a.ip()),
            &forwarded,
            &trusted,
        );
        if !limits.admit(client).await {
            let (req, _) = req.into_parts();
            return Ok(ServiceResponse::new(
                req,
                ApiError::RateLimited.error_response(),
            ));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Who a request counts against: the bearer token's hash (a raw token is
/// never kept), else the client address — the peer, or, when the peer is a
/// trusted proxy, the last address in `X-Forwarded-For` that is not one.
pub fn client_key(
    authorization: Option<&str>,
    peer: Option<IpAddr>,
    forwarded_for: &str,
    trusted: &[IpAddr],
) -> String {
    if let Some(auth) = authorization.filter(|a| !a.is_empty()) {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(auth.as_bytes());
        return format!("t:{}", hex::encode(&digest[..16]));
    }
    let Some(mut ip) = peer else {
        return "unknown".into();
    };
    for hop in forwarded_for.rsplit(',') {
        if !trusted.contains(&ip) {
            break;
        }
        match hop.trim().parse::<IpAddr>() {
            Ok(next) => ip = next,
            Err(_) => break,
        }
    }
    format!("a:{ip}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn tokens_are_hashed_and_forwarded_addresses_need_a_trusted_proxy() {
        let key = client_key(Some("Bearer s3cr3t-token"), None, "", &[]);
        assert!(!key.contains("s3cr3t"), "{key}");
        assert_eq!(key, client_key(Some("Bearer s3cr3t-token"), None, "", &[]));

        let proxy = [ip("127.0.0.1")];
        let cases = [
            (
                "127.0.0.9",
                "127.0.0.50",
                "a:127.0.0.9",
                "untrusted peer: header ignored",
            ),
            (
                "127.0.0.1",
                "127.0.0.50",
                "a:127.0.0.50",
                "trusted proxy: its client",
            ),
            (
                "127.0.0.1",
                "127.0.0.66, 127.0.0.50",
                "a:127.0.0.50",
                "only the hop the proxy saw",
            ),
            (
                "127.0.0.1",
                "127.0.0.66, 127.0.0.1",
                "a:127.0.0.66",
                "chained trusted proxies",
            ),
            (
                "127.0.0.1",
                "garbage",
                "a:127.0.0.1",
                "unparsable: the proxy itself",
            ),
            ("127.0.0.1", "", "a:127.0.0.1", "no header"),
        ];
        for (peer, xff, want, why) in cases {
            assert_eq!(client_key(None, Some(ip(peer)), xff, &proxy), want, "{why}");
        }
    }
}
