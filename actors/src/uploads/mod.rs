//! The uploads actor: private photos (student cards, proof of delivery,
//! dispute evidence). A photo is checked and cleaned off the actor's
//! thread ([`photo`]), stored through the object store's private side,
//! and its record (owner, type, the order it proves) is durable before the
//! upload is acknowledged. Who may see a photo is decided here: the
//! uploader, operators, and — once it proves an order — that order's
//! customer and courier; anyone else is told it does not exist.

pub mod photo;

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use crate::domain::{now_utc, ChinaDay, OpenId, OrderId, Upload, UploadId};
use crate::objects::{ObjectStore, PrivateObject};
use crate::orders::{OrderError, Orders};
use crate::storage::UploadRepo;
use photo::PhotoError;

/// Why an upload request failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The bytes are not an acceptable photo.
    #[error(transparent)]
    Photo(#[from] PhotoError),
    /// No such upload, or not one this caller may see or use.
    #[error("upload not found")]
    NotFound,
    /// The photo already proves another order.
    #[error("this photo already belongs to another order")]
    Taken,
    /// The uploader stored their share of photos today.
    #[error("at most {0} photos per user per day")]
    DailyLimit(u32),
    /// Storage, the object store or an actor failed.
    #[error("uploads are unavailable")]
    Unavailable(#[source] crate::errors::Cause),
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> UploadError {
    UploadError::Unavailable(crate::errors::cause(e))
}

/// Who asks to see a photo.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// A signed-in operator.
    Operator,
    /// A signed-in user.
    User(OpenId),
}

/// How many photos are decoded at once: each may take ~100 MB at 25 MP,
/// and a decode keeps a core busy.
const DECODING_AT_ONCE: usize = 2;

/// The actor.
pub struct UploadActor {
    store: Arc<dyn UploadRepo>,
    objects: Arc<dyn ObjectStore>,
    orders: Orders,
    /// Photos a user may store per China day (`uploads.per_day`).
    per_day: u32,
    /// Uploads accepted and not yet stored, per user (counted against
    /// the day's allowance while in flight).
    storing: HashMap<OpenId, u32>,
    /// Bounds the memory and CPU that decoding takes.
    decoding: Arc<tokio::sync::Semaphore>,
}

impl Actor for UploadActor {
    type Context = Context<Self>;
}

impl Supervised for UploadActor {}

/// Stores a photo for its uploader.
#[derive(Message)]
#[rtype(result = "Result<Upload, UploadError>")]
pub struct Store {
    /// Who uploads it.
    pub owner: OpenId,
    /// The body as received.
    pub bytes: Vec<u8>,
}

/// A photo and where to read it, for a viewer who may see it.
#[derive(Message)]
#[rtype(result = "Result<(Upload, PrivateObject), UploadError>")]
pub struct Open {
    /// Which.
    pub id: UploadId,
    /// Who asks.
    pub viewer: Viewer,
}

/// A photo its uploader names as theirs (a student card): NotFound unless
/// it is theirs.
#[derive(Message)]
#[rtype(result = "Result<Upload, UploadError>")]
pub struct OwnedBy {
    /// Which.
    pub id: UploadId,
    /// Who names it.
    pub owner: OpenId,
}

/// Makes a photo the proof of an order (delivery or dispute), which lets
/// that order's customer and courier see it. Again for the same order is
/// a no-op.
#[derive(Message)]
#[rtype(result = "Result<Upload, UploadError>")]
pub struct Attach {
    /// Which.
    pub id: UploadId,
    /// Who names it (must be the uploader).
    pub owner: OpenId,
    /// The order.
    pub order: OrderId,
}

impl UploadActor {
    /// Books one more photo for `owner` today, or refuses past the limit.
    fn book(&mut self, owner: &OpenId, day: ChinaDay) -> Result<(), UploadError> {
        let stored = self.store.uploads_on(owner, day).map_err(unavailable)?;
        let in_flight = self.storing.get(owner).copied().unwrap_or(0);
        if stored + in_flight >= self.per_day {
            return Err(UploadError::DailyLimit(self.per_day));
        }
        *self.storing.entry(owner.clone()).or_default() += 1;
        Ok(())
    }
}

impl Handler<Store> for UploadActor {
    type Result = ResponseActFuture<Self, Result<Upload, UploadError>>;

    fn handle(&mut self, Store { owner, bytes }: Store, _: &mut Self::Context) -> Self::Result {
        let day = ChinaDay::of(now_utc());
        if let Err(e) = self.book(&owner, day) {
            return Box::pin(async move { Err(e) }.into_actor(self));
        }
        let (store, objects) = (self.store.clone(), self.objects.clone());
        let decoding = self.decoding.clone();
        let who = owner.clone();
        let stored = async move {
            // Decoding a phone photo takes tens of milliseconds: not on
            // the actor's (or an HTTP worker's) thread, and a few at a time.
            let permit = decoding.acquire_owned().await.map_err(unavailable)?;
            let checked = tokio::task::spawn_blocking(move || {
                let checked = photo::check(&bytes);
                drop(permit);
                checked
            })
            .await
            .map_err(unavailable)??;
            let upload = Upload {
                id: UploadId::generate(now_utc()),
                owner,
                image: checked.kind,
                size: checked.bytes.len() as u32,
                width: checked.width,
                height: checked.height,
                order: None,
                created_at: now_utc(),
            };
            objects
                .put_private(
                    &upload.object_key(),
                    checked.bytes,
                    upload.image.content_type(),
                )
                .await
                .map_err(unavailable)?;
            store.put_upload(&upload).map_err(unavailable)?;
            store
                .count_upload(&upload.owner, day)
                .map_err(unavailable)?;
            store.commit().await.map_err(unavailable)?;
            metrics::counter!("lastmile_uploads_total").increment(1);
            Ok(upload)
        };
        Box::pin(stored.into_actor(self).map(move |result, act, _| {
            if let Some(n) = act.storing.get_mut(&who) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    act.storing.remove(&who);
                }
            }
            result
        }))
    }
}

impl Handler<Open> for UploadActor {
    type Result = ResponseFuture<Result<(Upload, PrivateObject), UploadError>>;

    fn handle(&mut self, Open { id, viewer }: Open, _: &mut Self::Context) -> Self::Result {
        let found = self.store.get_upload(&id);
        let (objects, orders) = (self.objects.clone(), self.orders.clone());
        Box::pin(async move {
            let upload = found.map_err(unavailable)?.ok_or(UploadError::NotFound)?;
            if !may_see(&upload, &viewer, &orders).await? {
                return Err(UploadError::NotFound);
            }
            let object = objects
                .get_private(&upload.object_key())
                .await
                .map_err(unavailable)?;
            Ok((upload, object))
        })
    }
}

/// The uploader and operators always; an order's customer and courier
/// once the photo proves that order.
async fn may_see(upload: &Upload, viewer: &Viewer, orders: &Orders) -> Result<bool, UploadError> {
    let user = match viewer {
        Viewer::Operator => return Ok(true),
        Viewer::User(user) if *user == upload.owner => return Ok(true),
        Viewer::User(user) => user,
    };
    let Some(order) = &upload.order else {
        return Ok(false);
    };
    match orders.get(order, user).await {
        Ok(_) => Ok(true),
        Err(OrderError::NotFound) => Ok(false),
        Err(e) => Err(unavailable(e)),
    }
}

impl UploadActor {
    /// The upload, when `owner` uploaded it (else NotFound: another's
    /// photo is not there for them).
    fn owned(&self, id: &UploadId, owner: &OpenId) -> Result<Upload, UploadError> {
        let upload = self
            .store
            .get_upload(id)
            .map_err(unavailable)?
            .ok_or(UploadError::NotFound)?;
        if upload.owner == *owner {
            Ok(upload)
        } else {
            Err(UploadError::NotFound)
        }
    }
}

impl Handler<OwnedBy> for UploadActor {
    type Result = Result<Upload, UploadError>;

    fn handle(&mut self, OwnedBy { id, owner }: OwnedBy, _: &mut Self::Context) -> Self::Result {
        self.owned(&id, &owner)
    }
}

impl Handler<Attach> for UploadActor {
    type Result = ResponseFuture<Result<Upload, UploadError>>;

    fn handle(
        &mut self,
        Attach { id, owner, order }: Attach,
        _: &mut Self::Context,
    ) -> Self::Result {
        let attached = self.owned(&id, &owner).and_then(|mut upload| {
            match &upload.order {
                Some(o) if *o == order => return Ok((upload, false)),
                Some(_) => return Err(UploadError::Taken),
                None => upload.order = Some(order),
            }
            self.store.put_upload(&upload).map_err(unavailable)?;
            Ok((upload, true))
        });
        let store = self.store.clone();
        Box::pin(async move {
            let (upload, changed) = attached?;
            if changed {
                store.commit().await.map_err(unavailable)?;
            }
            Ok(upload)
        })
    }
}

/// The façade's (and other actors') handle on the uploads actor.
#[derive(Clone)]
pub struct Uploads {
    addr: Addr<UploadActor>,
}

impl Uploads {
    /// Starts the supervised uploads actor; each user may store `per_day`
    /// photos a China day.
    pub fn start(
        store: Arc<dyn UploadRepo>,
        objects: Arc<dyn ObjectStore>,
        orders: Orders,
        per_day: u32,
    ) -> Self {
        let addr = Supervisor::start(move |_| UploadActor {
            store,
            objects,
            orders,
            per_day,
            storing: HashMap::new(),
            decoding: Arc::new(tokio::sync::Semaphore::new(DECODING_AT_ONCE)),
        });
        Self { addr }
    }

    /// Checks, cleans and stores a photo.
    pub async fn store(&self, owner: OpenId, bytes: Vec<u8>) -> Result<Upload, UploadError> {
        self.addr
            .send(Store { owner, bytes })
            .await
            .map_err(unavailable)?
    }

    /// A photo the viewer may see, and where to read it.
    pub async fn open(
        &self,
        id: UploadId,
        viewer: Viewer,
    ) -> Result<(Upload, PrivateObject), UploadError> {
        self.addr
            .send(Open { id, viewer })
            .await
            .map_err(unavailable)?
    }

    /// The uploader's own photo.
    pub async fn owned_by(&self, id: UploadId, owner: OpenId) -> Result<Upload, UploadError> {
        self.addr
            .send(OwnedBy { id, owner })
            .await
            .map_err(unavailable)?
    }

    /// Makes the uploader's photo the proof of an order.
    pub async fn attach(
        &self,
        id: UploadId,
        owner: OpenId,
        order: OrderId,
    ) -> Result<Upload, UploadError> {
        self.addr
            .send(Attach { id, owner, order })
            .await
            .map_err(unavailable)?
    }

    /// True while the actor runs.
    pub fn is_alive(&self) -> bool {
        self.addr.connected()
    }
}
