//! `http.rate_limit`: requests per second per client, answered 429
//! `rate_limited` beyond it. Off by default. A client is its verified
//! identity (a signed-in user's openid, or the operator) once its token
//! checks out, else its address: a made-up or padded `Authorization`
//! header never opens a fresh bucket. WeChat callbacks and operations
//! endpoints are never limited. `X-Forwarded-For` is believed only from
//! `http.trusted_proxies` (anyone else could name a fresh address per
//! request and never be limited). IPv6 clients count by their /64, the
//! block one subscriber holds.
//!
//! Strikes, always on: failed admin sign-ins and refused WeChat callbacks
//! count against the address; past a few a minute it gets 429 there.

use std::net::IpAddr;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, ResponseError};

use crate::error::ApiError;
use crate::extract::{bearer_token, is_admin_token, Caller};
use crate::state::AppState;
/// Paths that are never limited: WeChat must always reach its callbacks,
/// and operators their probes.
const EXEMPT: [&str; 4] = ["/api/v1/wechat/", "/healthz", "/readyz", "/metrics"];
/// Where the operator's token, not a user's, is the identity.
const ADMIN_PREFIX: &str = "/api/v1/admin/";

/// The middleware.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let limits = state.as_ref().and_then(|s| s.rate_limits.clone());
    let exempt = EXEMPT.iter().any(|p| req.path().starts_with(p));
    if let (Some(state), Some(limits), false) = (state, limits, exempt) {
        let client = identity(&req, &state).await;
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

/// Who a request counts against: the verified user or operator, else the
/// address. A verified user is handed on to the handler's [`Caller`], so
/// the token is checked once.
async fn identity(req: &ServiceRequest, state: &AppState) -> String {
    if let Some(token) = bearer_token(req.request()) {
        if req.path().starts_with(ADMIN_PREFIX) {
            if is_admin_token(state, &token) {
                return "operator".into();
            }
        } else if let Ok(openid) = state.sessions.authenticate(&token).await {
            let key = format!("u:{openid}");
            req.extensions_mut().insert(Caller(openid));
            return key;
        }
    }
    client_address(req.request())
}

/// The address a request came from, as a limiter key.
pub fn client_address(req: &HttpRequest) -> String {
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
    address_key(req.peer_addr().map(|a| a.ip()), &forwarded, &trusted)
}

/// The client address: the peer, or, when the peer is a trusted proxy,
/// the last address in `X-Forwarded-For` that is not one. IPv6 addresses
/// count by their /64.
pub fn address_key(peer: Option<IpAddr>, forwarded_for: &str, trusted: &[IpAddr]) -> String {
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
    match ip {
        IpAddr::V4(v4) => format!("a:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("a:{v4}"),
            None => {
                let s = v6.segments();
                format!("a:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_addresses_need_a_trusted_proxy() {
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
            (
                "2001:db8:1:2:aaaa::1",
                "",
                "a:2001:db8:1:2::/64",
                "IPv6 by its /64",
            ),
            ("::ffff:10.0.0.7", "", "a:10.0.0.7", "mapped IPv4"),
        ];
        for (peer, xff, want, why) in cases {
            assert_eq!(address_key(Some(ip(peer)), xff, &proxy), want, "{why}");
        }
        assert_eq!(
            address_key(Some(ip("2001:db8:1:2::9")), "", &[]),
            address_key(Some(ip("2001:db8:1:2:ffff::1")), "", &[]),
            "one subscriber, one bucket"
        );
    }
}
