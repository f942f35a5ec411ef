//! Single flight: concurrent asks for the same key share one call (one
//! unifiedorder per order, one wxacode per scene), so an impatient client
//! or a burst never makes WeChat do the work twice.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;

use futures::future::{FutureExt, LocalBoxFuture, Shared};

/// The calls under way, by key; owned by one actor.
pub struct Flights<K, V: Clone> {
    calls: HashMap<K, Shared<LocalBoxFuture<'static, V>>>,
}

impl<K: Eq + Hash, V: Clone + 'static> Flights<K, V> {
    /// No call under way.
    pub fn new() -> Self {
        Self {
            calls: HashMap::new(),
        }
    }

    /// The call under way for `key`, if any, to wait on as well.
    pub fn join(&self, key: &K) -> Option<LocalBoxFuture<'static, V>> {
        self.calls.get(key).map(|call| call.clone().boxed_local())
    }

    /// Starts `call` for `key`; everyone who joins meanwhile gets its result.
    /// The owner calls [`Flights::land`] once the call has been booked.
    pub fn start(
        &mut self,
        key: K,
        call: impl Future<Output = V> + 'static,
    ) -> LocalBoxFuture<'static, V> {
        let shared = call.boxed_local().shared();
        self.calls.insert(key, shared.clone());
        shared.boxed_local()
    }

    /// The call for `key` is over: the next ask starts a new one.
    pub fn land(&mut self, key: &K) {
        self.calls.remove(key);
    }

    /// Forgets every call (an actor restarting).
    pub fn clear(&mut self) {
        self.calls.clear();
    }
}

impl<K: Eq + Hash, V: Clone + 'static> Default for Flights<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    #[test]
    fn concurrent_asks_share_one_call_until_it_lands() {
        let runs = Rc::new(Cell::new(0));
        let mut flights: Flights<&str, u32> = Flights::new();
        let call = |runs: Rc<Cell<u32>>| async move {
            runs.set(runs.get() + 1);
            7
        };
        let first = flights.start("a", call(runs.clone()));
        let second = flights.join(&"a").expect("under way");
        assert!(flights.join(&"b").is_none());
        let both = futures::executor::block_on(futures::future::join(first, second));
        assert_eq!((both, runs.get()), ((7, 7), 1));
        flights.land(&"a");
        assert!(flights.join(&"a").is_none(), "the next ask starts anew");
    }
}
