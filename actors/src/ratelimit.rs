//! The rate limiter actor: a token bucket per client. Two run in the
//! service: the request limit (only when `http.rate_limit` is set: `rate`
//! requests per second, bursts up to one second's worth) and the strikes
//! (always: failed admin sign-ins and refused WeChat callbacks per
//! address, a few in a burst, then a few a minute).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;

/// Buckets idle this long are forgotten (they would be full anyway).
const FORGET_AFTER: Duration = Duration::from_secs(60);
/// Most clients tracked at once: a flood of fresh addresses must not grow
/// the map without end.
pub const MAX_CLIENTS: usize = 65_536;
/// Where clients beyond [`MAX_CLIENTS`] are counted, together.
const OVERFLOW: &str = "overflow";

/// How fast a bucket refills and how much it holds.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// Tokens a full bucket holds.
    pub burst: f64,
    /// Tokens added per second.
    pub per_second: f64,
}

impl Rate {
    /// `n` per second, bursts of one second's worth.
    pub fn per_second(n: u32) -> Self {
        let n = f64::from(n.max(1));
        Self {
            burst: n,
            per_second: n,
        }
    }

    /// Strikes: `burst` at once, then `burst` a minute.
    pub fn strikes(burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            burst,
            per_second: burst / 60.0,
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn refill(&mut self, rate: Rate, now: Instant) {
        let refill = now.duration_since(self.last).as_secs_f64() * rate.per_second;
        self.tokens = (self.tokens + refill).min(rate.burst);
        self.last = now;
    }
}

/// The actor.
pub struct RateLimiter {
    rate: Rate,
    buckets: HashMap<String, Bucket>,
}

/// May this client make a request now? Takes a token when it may.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Admit {
    /// Who (a verified identity or an address).
    pub client: String,
}

/// Does this client still have a token? Takes none.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Peek {
    /// Who.
    pub client: String,
}

/// Takes a token from this client, if it has one (a strike).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Charge {
    /// Who.
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
    fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: HashMap::new(),
        }
    }

    /// The client's bucket, refilled to `now`; at capacity, full buckets
    /// (which say nothing a missing one would not) make room first.
    fn bucket(&mut self, client: String, now: Instant) -> &mut Bucket {
        let rate = self.rate;
        if self.buckets.len() >= MAX_CLIENTS && !self.buckets.contains_key(&client) {
            self.buckets.retain(|_, b| {
                b.refill(rate, now);
                b.tokens < rate.burst
            });
        }
        let key = if self.buckets.len() >= MAX_CLIENTS && !self.buckets.contains_key(&client) {
            OVERFLOW.to_owned()
        } else {
            client
        };
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: rate.burst,
            last: now,
        });
        bucket.refill(rate, now);
        bucket
    }

    fn admit(&mut self, client: String, now: Instant) -> bool {
        let bucket = self.bucket(client, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn peek(&mut self, client: &str, now: Instant) -> bool {
        let rate = self.rate;
        self.buckets.get_mut(client).is_none_or(|b| {
            b.refill(rate, now);
            b.tokens >= 1.0
        })
    }

    fn charge(&mut self, client: String, now: Instant) {
        let bucket = self.bucket(client, now);
        bucket.tokens = (bucket.tokens - 1.0).max(0.0);
    }
}

impl Handler<Admit> for RateLimiter {
    type Result = bool;

    fn handle(&mut self, Admit { client }: Admit, _: &mut Self::Context) -> bool {
        self.admit(client, Instant::now())
    }
}

impl Handler<Peek> for RateLimiter {
    type Result = bool;

    fn handle(&mut self, Peek { client }: Peek, _: &mut Self::Context) -> bool {
        self.peek(&client, Instant::now())
    }
}

impl Handler<Charge> for RateLimiter {
    type Result = ();

    fn handle(&mut self, Charge { client }: Charge, _: &mut Self::Context) {
        self.charge(client, Instant::now());
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
        Self::start_with(Rate::per_second(per_second))
    }

    /// Starts a limiter with any rate.
    pub fn start_with(rate: Rate) -> Self {
        let addr = Supervisor::start(move |_| RateLimiter::new(rate));
        Self { addr }
    }

    /// True when `client` may go ahead, taking a token (an unavailable
    /// limiter admits).
    pub async fn admit(&self, client: String) -> bool {
        self.addr.send(Admit { client }).await.unwrap_or(true)
    }

    /// True while `client` has a token left; takes none.
    pub async fn allows(&self, client: String) -> bool {
        self.addr.send(Peek { client }).await.unwrap_or(true)
    }

    /// Takes a token from `client` (a failed attempt), without waiting.
    pub fn strike(&self, client: String) {
        self.addr.do_send(Charge { client });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_a_burst_then_refills() {
        let mut limiter = RateLimiter::new(Rate::per_second(2));
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

    #[test]
    fn strikes_bar_a_client_until_they_refill() {
        let mut strikes = RateLimiter::new(Rate::strikes(3));
        let t0 = Instant::now();
        assert!(strikes.peek("a", t0), "never struck");
        for _ in 0..3 {
            strikes.charge("a".into(), t0);
        }
        assert!(!strikes.peek("a", t0), "three strikes");
        assert!(strikes.peek("b", t0), "per client");
        assert!(
            strikes.peek("a", t0 + Duration::from_secs(20)),
            "one a 20 s"
        );
    }

    #[test]
    fn the_map_is_bounded_and_full_buckets_make_room() {
        let mut limiter = RateLimiter::new(Rate::per_second(1));
        let t0 = Instant::now();
        for i in 0..MAX_CLIENTS + 100 {
            limiter.admit(format!("c{i}"), t0);
        }
        assert!(limiter.buckets.len() <= MAX_CLIENTS + 1, "bounded");
        assert!(
            !limiter.admit(format!("c{}", MAX_CLIENTS + 5000), t0),
            "past the bound, new clients share one bucket"
        );
        // A second later every bucket is full again: they make room.
        let t1 = t0 + Duration::from_secs(2);
        assert!(limiter.admit("fresh".into(), t1));
        assert!(limiter.buckets.len() < 10, "{}", limiter.buckets.len());
    }
}
