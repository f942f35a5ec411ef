//! The share-code actor: wxacode images by (scene, page), made once —
//! concurrent first requests share one WeChat call and one upload — then
//! served from the cache in sled. Each user may make `daily_limit` new
//! codes per UTC day (cached ones are free): every new code is a WeChat
//! call and a stored image. The counts live in memory (a restart resets
//! them).

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use sha2::{Digest, Sha256};

use crate::auth::token::Tokens;
use crate::domain::{now_utc, OpenId, PagePath, Scene};
use crate::objects::ObjectStore;
use crate::storage::ShareCodeRepo;
use crate::wechat::WeChat;

/// Why no share code could be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ShareError {
    /// WeChat, object storage or sled failed.
    #[error("share code unavailable")]
    Unavailable(#[source] crate::errors::Cause),
    /// The user made their share of new codes today.
    #[error("at most {0} new share codes per user per day")]
    DailyLimit(u32),
}

/// The actor.
pub struct ShareCodeActor {
    store: Arc<dyn ShareCodeRepo>,
    wechat: Arc<dyn WeChat>,
    tokens: Tokens,
    objects: Arc<dyn ObjectStore>,
    making: crate::flight::Flights<(String, String), Result<String, ShareError>>,
    daily_limit: u32,
    /// New codes made per user on the current UTC day.
    made_today: HashMap<OpenId, (i64, u32)>,
}

/// The URL of the wxacode for (scene, page).
#[derive(Message)]
#[rtype(result = "Result<String, ShareError>")]
pub struct GetShareCode {
    /// The scene.
    pub scene: Scene,
    /// The page (empty = home).
    pub page: PagePath,
    /// Who asks (a new code counts against their daily limit).
    pub user: OpenId,
}

#[derive(Message)]
#[rtype(result = "Result<String, ShareError>")]
struct ShareCodeMade {
    key: (String, String),
    result: Result<String, ShareError>,
}

impl Actor for ShareCodeActor {
    type Context = Context<Self>;
}

impl Supervised for ShareCodeActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.making.clear();
    }
}

/// The object key for (scene, page): stable, flat, and not guessable from
/// the scene alone.
fn object_key(scene: &str, page: &str) -> String {
    let digest = Sha256::digest([scene.as_bytes(), b"\0", page.as_bytes()].concat());
    format!("wxacode-{}.png", hex::encode(&digest[..12]))
}

impl ShareCodeActor {
    /// Books one new code for `user`, or refuses past the daily limit.
    fn count_new_code(&mut self, user: OpenId) -> Result<(), ShareError> {
        let today = now_utc().unix_timestamp().div_euclid(86_400);
        self.made_today.retain(|_, (day, _)| *day == today);
        let (_, made) = self.made_today.entry(user).or_insert((today, 0));
        if *made >= self.daily_limit {
            return Err(ShareError::DailyLimit(self.daily_limit));
        }
        *made += 1;
        Ok(())
    }
}

impl Handler<GetShareCode> for ShareCodeActor {
    type Result = ResponseFuture<Result<String, ShareError>>;

    fn handle(
        &mut self,
        GetShareCode { scene, page, user }: GetShareCode,
        ctx: &mut Self::Context,
    ) -> Self::Result {
        let key = (scene.as_str().to_owned(), page.as_str().to_owned());
        match self.store.get_share_code(&key.0, &key.1) {
            Ok(Some(url)) => return Box::pin(async move { Ok(url) }),
            Ok(None) => {}
            Err(e) => {
                let e = ShareError::Unavailable(crate::errors::cause(e));
                return Box::pin(async move { Err(e) });
            }
        }
        if let Some(making) = self.making.join(&key) {
            return making;
        }
        if let Err(e) = self.count_new_code(user) {
            return Box::pin(async move { Err(e) });
        }
        let (wechat, tokens, objects, addr) = (
            self.wechat.clone(),
            self.tokens.clone(),
            self.objects.clone(),
            ctx.address(),
        );
        let (store, made_key) = (self.store.clone(), key.clone());
        let make = async move {
            let (scene, page) = (made_key.0.clone(), made_key.1.clone());
            let result = async {
                let png = tokens
                    .call(|token| {
                        let (wechat, scene, page) = (wechat.clone(), scene.clone(), page.clone());
                        async move { wechat.wxacode_unlimited(&token, &scene, &page).await }
                    })
                    .await
                    .map_err(|e| ShareError::Unavailable(crate::errors::cause(e)))?;
                objects
                    .put(&object_key(&scene, &page), png, "image/png")
                    .await
                    .map_err(|e| ShareError::Unavailable(crate::errors::cause(e)))
            }
            .await;
            let url = addr
                .send(ShareCodeMade {
                    key: made_key,
                    result,
                })
                .await
                .map_err(|e| ShareError::Unavailable(crate::errors::cause(e)))??;
            store
                .commit()
                .await
                .map_err(|e| ShareError::Unavailable(crate::errors::cause(e)))?;
            Ok(url)
        };
        self.making.start(key, make)
    }
}

impl Handler<ShareCodeMade> for ShareCodeActor {
    type Result = Result<String, ShareError>;

    fn handle(
        &mut self,
        ShareCodeMade { key, result }: ShareCodeMade,
        _: &mut Self::Context,
    ) -> Self::Result {
        self.making.land(&key);
        let url = result?;
        self.store
            .put_share_code(&key.0, &key.1, &url)
            .map_err(|e| ShareError::Unavailable(crate::errors::cause(e)))?;
        metrics::counter!("lastmile_share_codes_made_total").increment(1);
        Ok(url)
    }
}

/// The handle.
#[derive(Clone)]
pub struct ShareCodes {
    addr: Addr<ShareCodeActor>,
}

crate::supervise::inject_panic!(ShareCodeActor, "share_codes", ShareCodes);

impl ShareCodes {
    /// True while the actor runs.
    pub fn is_alive(&self) -> bool {
        self.addr.connected()
    }

    /// Starts the supervised share-code actor; each user may make
    /// `daily_limit` new codes per day.
    pub fn start(
        store: Arc<dyn ShareCodeRepo>,
        wechat: Arc<dyn WeChat>,
        tokens: Tokens,
        objects: Arc<dyn ObjectStore>,
        daily_limit: u32,
    ) -> Self {
        let addr = Supervisor::start(move |_| ShareCodeActor {
            store,
            wechat,
            tokens,
            objects,
            making: crate::flight::Flights::new(),
            daily_limit,
            made_today: HashMap::new(),
        });
        Self { addr }
    }

    /// The URL of the wxacode for (scene, page), asked for by `user`.
    pub async fn get(
        &self,
        scene: Scene,
        page: PagePath,
        user: OpenId,
    ) -> Result<String, ShareError> {
        self.addr
            .send(GetShareCode { scene, page, user })
            .await
            .map_err(|e| ShareError::Unavailable(crate::errors::cause(e)))?
    }
}
