//! Where a request comes from: the peer, or, behind a trusted proxy, the
//! client it names in `X-Forwarded-For` (`http.trusted_proxies`), as the
//! key rate limits and strikes count against.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{web, HttpRequest};

use crate::state::AppState;

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
