//! What every actor shares about crashing: a panic inside a handler stops
//! the actor (instead of unwinding through its arbiter), its `Supervisor`
//! restarts it, and its `started` rebuilds what it needs from sled.
//! [`InjectPanic`] makes that happen on purpose, so tests can prove it for
//! each actor.

use std::panic::{catch_unwind, AssertUnwindSafe};

use actix::prelude::*;

/// Make an actor panic inside a handler (fault injection for tests).
#[doc(hidden)]
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct InjectPanic;

/// Runs `f` for actor `name`; a panic is logged and counted, stops the
/// actor (its supervisor restarts it) and gives None.
pub fn contain<A, R>(name: &'static str, ctx: &mut Context<A>, f: impl FnOnce() -> R) -> Option<R>
where
    A: Actor<Context = Context<A>>,
{
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(_) => {
            tracing::error!(actor = name, "actor panicked; restarting it from sled");
            metrics::counter!("lastmile_actor_restarts_total", "actor" => name).increment(1);
            ctx.stop();
            None
        }
    }
}

/// Implements [`InjectPanic`] for an actor — the panic goes through
/// [`contain`], as a real one inside a handler would — and the
/// `inject_panic()` of its handle (a struct with an `addr` field).
macro_rules! inject_panic {
    ($actor:ty, $name:literal, $handle:ty) => {
        impl $handle {
            /// Makes the actor panic inside a handler (fault injection for tests).
            #[doc(hidden)]
            pub fn inject_panic(&self) {
                self.addr.do_send($crate::supervise::InjectPanic);
            }
        }

        impl actix::Handler<$crate::supervise::InjectPanic> for $actor {
            type Result = ();

            fn handle(
                &mut self,
                _: $crate::supervise::InjectPanic,
                ctx: &mut Self::Context,
            ) -> Self::Result {
                let _ = $crate::supervise::contain::<Self, ()>($name, ctx, || {
                    panic!(concat!("fault injected into ", $name))
                });
            }
        }
    };
}
pub(crate) use inject_panic;
