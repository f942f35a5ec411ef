//! The rate limiter actor (only started when `http.rate_limit` is set): a
//! token bucket per client — `rate` requests per second, bursts up to one
//! second's worth.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;

/// Buckets idle this long are forgotten (they would be full anyway).
const FORGET_AFTER: Duration = Duration::from_secs(60);

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The actor.
pub struct RateLimiter {
    rate: f64,
    buckets: HashMap<String, Bucket>,
}

/// May this client make a request now?
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Admit {
    /// Who (a token hash or an address).
    pub client: String,
}

impl Actor for RateLimiter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(FORGET_AFTER, |act, _| {
            act.buckets.retain(|_, b| b.last.elapsed() < FORGET_AFTER);
        });
    }
}

impl Supervised for RateLimiter {}

impl RateLimiter {
    fn admit(&mut self, client: String, now: Instant) -> bool {
        let rate = self.rate;
        let bucket = self.buckets.entry(client).or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        let refill = now.duration_since(bucket.last).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Handler<Admit> for RateLimiter {
    type Result = bool;

    fn handle(&mut self, Admit { client }: Admit, _: &mut Self::Context) -> bool {
        self.admit(client, Instant::now())
    }
}

/// The façade's handle.
#[derive(Clone)]
pub struct RateLimits {
    addr: Addr<RateLimiter>,
}

crate::supervise::inject_panic!(RateLimiter, "rate_limiter", RateLimits);

impl RateLimits {
    /// True while the actor runs.
    pub fn is_alive(&self) -> bool {
        self.addr.connected()
    }

    /// Starts a limiter allowing `per_second` requests per client.
    pub fn start(per_second: u32) -> Self {
        let rate = f64::from(per_second.max(1));
        let addr = Supervisor::start(move |_| RateLimiter {
            rate,
            buckets: HashMap::new(),
        });
        Self { addr }
    }

    /// True when `client` may go ahead (an unavailable limiter admits).
    pub async fn admit(&self, client: String) -> bool {
        self.addr.send(Admit { client }).await.unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_a_burst_then_refills() {
        let mut limiter = RateLimiter {
            rate: 2.0,
            buckets: HashMap::new(),
        };
        let t0 = Instant::now();
        assert!(limiter.admit("a".into(), t0));
        assert!(limiter.admit("a".into(), t0));
        assert!(
            !limiter.admit("a".into(), t0),
            "burst of one second's worth"
        );
        assert!(limiter.admit("b".into(), t0), "per client");
        assert!(
            limiter.admit("a".into(), t0 + Duration::from_millis(500)),
            "refilled"
        );
    }
}
