//! The courier registry: owns courier profiles (`couriers`) and the daily
//! give-back counts, for every campus. Campus dispatchers get the profiles
//! they need through [`super::Dispatch`], which asks here first; decisions
//! that bar a courier are told to the campuses after they are durable.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use super::DispatchError;
use crate::domain::{
    now_utc, Application, CampusId, ChangedBy, ChinaDay, CourierProfile, Decision, OpenId, Order,
    OrderId,
};
use crate::orders::{OrderError, Orders};
use crate::storage::CourierRepo;

/// What the registry needs of the settings.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Operators approve couriers (`couriers.review`).
    pub review: bool,
    /// Orders a courier may give back per China day.
    pub releases_per_day: u32,
}

/// The actor.
pub struct Registry {
    store: Arc<dyn CourierRepo>,
    orders: Orders,
    config: RegistryConfig,
    /// Give-backs asked of a shard and not yet answered, per courier
    /// (counted against the daily limit while in flight).
    releasing: HashMap<OpenId, u32>,
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> DispatchError {
    DispatchError::Unavailable(crate::errors::cause(e))
}

/// A courier's profile (None: not a courier).
#[derive(Message)]
#[rtype(result = "Result<Option<CourierProfile>, DispatchError>")]
pub(super) struct Profile(pub OpenId);

/// Every profile, oldest application first.
#[derive(Message)]
#[rtype(result = "Result<Vec<CourierProfile>, DispatchError>")]
pub(super) struct AllProfiles;

/// Become a courier (or update the profile); durable when answered.
#[derive(Message)]
#[rtype(result = "Result<CourierProfile, DispatchError>")]
pub(super) struct Register(pub Application);

/// An operator's decision; durable when answered, with whether it changed
/// anything.
#[derive(Message)]
#[rtype(result = "Result<(CourierProfile, bool), DispatchError>")]
pub(super) struct Decide {
    pub courier: OpenId,
    pub decision: Decision,
}

/// The campus a courier works on now; durable when answered (written only
/// when it changed).
#[derive(Message)]
#[rtype(result = "Result<(), DispatchError>")]
pub(super) struct WorksOn {
    pub courier: OpenId,
    pub campus: CampusId,
}

/// A courier gives back an order they have not picked up.
#[derive(Message)]
#[rtype(result = "Result<Order, DispatchError>")]
pub(super) struct Release {
    pub id: OrderId,
    pub courier: OpenId,
    pub reason: String,
}

impl Actor for Registry {
    type Context = Context<Self>;
}

impl Supervised for Registry {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!("courier registry restarting");
        self.releasing.clear();
    }
}

impl Registry {
    fn profile(&self, courier: &OpenId) -> Result<Option<CourierProfile>, DispatchError> {
        self.store.get_courier(courier).map_err(unavailable)
    }
}

impl Handler<Profile> for Registry {
    type Result = Result<Option<CourierProfile>, DispatchError>;

    fn handle(&mut self, Profile(courier): Profile, _: &mut Self::Context) -> Self::Result {
        self.profile(&courier)
    }
}

impl Handler<AllProfiles> for Registry {
    type Result = Result<Vec<CourierProfile>, DispatchError>;

    fn handle(&mut self, _: AllProfiles, _: &mut Self::Context) -> Self::Result {
        let mut all = self.store.all_couriers().map_err(unavailable)?;
        all.sort_by(|a, b| {
            a.applied_at
                .cmp(&b.applied_at)
                .then(a.openid.cmp(&b.openid))
        });
        Ok(all)
    }
}

impl Handler<Register> for Registry {
    type Result = ResponseFuture<Result<CourierProfile, DispatchError>>;

    fn handle(&mut self, Register(application): Register, _: &mut Self::Context) -> Self::Result {
        let stored = self.profile(&application.openid).and_then(|existing| {
            let profile =
                CourierProfile::apply(existing, application, self.config.review, now_utc());
            self.store.put_courier(&profile).map_err(unavailable)?;
            Ok(profile)
        });
        let store = self.store.clone();
        Box::pin(async move {
            let profile = stored?;
            store.commit().await.map_err(unavailable)?;
            Ok(profile)
        })
    }
}

impl Handler<Decide> for Registry {
    type Result = ResponseFuture<Result<(CourierProfile, bool), DispatchError>>;

    fn handle(&mut self, msg: Decide, _: &mut Self::Context) -> Self::Result {
        let decided: Result<(CourierProfile, bool), DispatchError> = (|| {
            let mut profile = self
                .profile(&msg.courier)?
                .ok_or(DispatchError::UnknownCourier)?;
            let changed = profile
                .decide(msg.decision, now_utc())
                .map_err(|m| DispatchError::Conflict(m.into()))?;
            if changed {
                self.store.put_courier(&profile).map_err(unavailable)?;
            }
            Ok((profile, changed))
        })();
        let store = self.store.clone();
        Box::pin(async move {
            let decided = decided?;
            store.commit().await.map_err(unavailable)?;
            Ok(decided)
        })
    }
}

impl Handler<WorksOn> for Registry {
    type Result = ResponseFuture<Result<(), DispatchError>>;

    fn handle(&mut self, msg: WorksOn, _: &mut Self::Context) -> Self::Result {
        let written = self
            .profile(&msg.courier)
            .and_then(|profile| match profile {
                Some(mut p) if p.campus.as_ref() != Some(&msg.campus) => {
                    p.campus = Some(msg.campus);
                    self.store.put_courier(&p).map_err(unavailable)?;
                    Ok(true)
                }
                _ => Ok(false),
            });
        let store = self.store.clone();
        Box::pin(async move {
            if written? {
                store.commit().await.map_err(unavailable)?;
            }
            Ok(())
        })
    }
}

impl Handler<Release> for Registry {
    type Result = ResponseActFuture<Self, Result<Order, DispatchError>>;

    fn handle(&mut self, msg: Release, _: &mut Self::Context) -> Self::Result {
        let Release {
            id,
            courier,
            reason,
        } = msg;
        let day = ChinaDay::of(now_utc());
        let checked = (|| {
            if self.profile(&courier)?.is_none() {
                return Err(super::not_a_courier());
            }
            let given = self.store.releases_on(&courier, day).map_err(unavailable)?;
            let in_flight = self.releasing.get(&courier).copied().unwrap_or(0);
            if given + in_flight >= self.config.releases_per_day {
                return Err(DispatchError::Conflict(format!(
                    "a courier gives back at most {} orders a day",
                    self.config.releases_per_day
                )));
            }
            Ok(())
        })();
        if let Err(e) = checked {
            return Box::pin(async move { Err(e) }.into_actor(self));
        }
        *self.releasing.entry(courier.clone()).or_default() += 1;
        let (orders, store, who) = (self.orders.clone(), self.store.clone(), courier.clone());
        Box::pin(
            async move {
                let by = ChangedBy::Courier(who.clone());
                let order = orders
                    .unassign_noted(id, who.clone(), by, reason)
                    .await
                    .map_err(|e| match e {
                        // Not theirs to give back: they may not see it either.
                        OrderError::Forbidden(_) => DispatchError::NotFound,
                        other => DispatchError::from(other),
                    })?;
                store.count_release(&who, day).map_err(unavailable)?;
                store.commit().await.map_err(unavailable)?;
                Ok(order)
            }
            .into_actor(self)
            .map(move |result, act, _| {
                if let Some(n) = act.releasing.get_mut(&courier) {
                    *n = n.saturating_sub(1);
                }
                if result.is_ok() {
                    metrics::counter!("lastmile_dispatch_releases_total").increment(1);
                }
                result
            }),
        )
    }
}

/// Starts the supervised registry.
pub(super) fn start(
    store: Arc<dyn CourierRepo>,
    orders: Orders,
    config: RegistryConfig,
) -> Addr<Registry> {
    Supervisor::start(move |_| Registry {
        store,
        orders,
        config,
        releasing: HashMap::new(),
    })
}
