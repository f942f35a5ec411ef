//! Request extractors that fail with [`ApiError`]: the caller's identity,
//! the order id in the path, and bodies read under the 64 KiB limit.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures::future::LocalBoxFuture;
use futures::StreamExt;
use lastmile_actors::domain::{ChangedBy, OpenId, OperatorName, OrderId, Power, Role};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// How many of a user's newest orders say whether a limited operator
/// covers them.
const USER_ORDERS_LOOKED_AT: usize = 100;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The authenticated user (from `Authorization: Bearer <token>`).
#[derive(Debug, Clone)]
pub struct Caller(pub OpenId);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Already verified by the rate limiter, when it runs.
        if let Some(caller) = req.extensions().get::<Caller>().cloned() {
            return Box::pin(std::future::ready(Ok(caller)));
        }
        let token = bearer_token(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let state = state.ok_or(ApiError::Unavailable)?;
            let token =
                token.ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))?;
            Ok(Caller(state.sessions.authenticate(&token).await?))
        })
    }
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// Whether `given` is `admin.token`. Digests are compared, in constant
/// time, so neither the content nor the length of the token leaks.
pub fn is_admin_token(state: &AppState, given: &str) -> bool {
    use sha2::Digest;
    use subtle::ConstantTimeEq;
    let Some(expected) = &state.admin_token else {
        return false;
    };
    let (given, expected) = (
        sha2::Sha256::digest(given.as_bytes()),
        sha2::Sha256::digest(expected.as_bytes()),
    );
    bool::from(given.ct_eq(&expected))
}

/// A campus operator: `Authorization: Bearer <token>` with `admin.token`
/// (the bootstrap superuser, named `admin`) or a named operator's token.
/// With neither configured the whole admin surface does not exist (404).
/// An address with too many failed sign-ins gets 429 for a while.
#[derive(Debug, Clone)]
pub struct Operator {
    /// Who (in histories and metrics).
    pub name: OperatorName,
    /// What they may do.
    pub role: Role,
    /// The campuses they are limited to (empty: all).
    pub campuses: std::sync::Arc<[String]>,
}

impl Operator {
    /// This operator as the author of an order change.
    pub fn changed_by(&self) -> ChangedBy {
        ChangedBy::Operator(Some(self.name.clone()))
    }

    /// The operator behind a bearer token, if it is one.
    pub fn of_token(state: &AppState, given: &str) -> Option<Self> {
        if is_admin_token(state, given) {
            let name = OperatorName::parse(OperatorName::BOOTSTRAP).ok()?;
            return Some(Operator {
                name,
                role: Role::Admin,
                campuses: std::sync::Arc::from([]),
            });
        }
        state.operators.signed_in(given).map(|s| Operator {
            name: s.name,
            role: s.role,
            campuses: s.campuses,
        })
    }

    /// Whether the operator may see and act on `campus`.
    pub fn covers(&self, campus: &str) -> bool {
        self.campuses.is_empty() || self.campuses.iter().any(|c| c == campus)
    }

    /// Whether the operator may see and act on an order (on its campus).
    pub fn covers_order(&self, state: &AppState, order: &lastmile_actors::domain::Order) -> bool {
        self.covers(state.campus_of(order))
    }

    /// Not found unless the operator covers the order's campus (an
    /// operator limited to campuses never learns of others' orders).
    pub async fn may_act_on(&self, state: &AppState, id: &OrderId) -> Result<(), ApiError> {
        if self.campuses.is_empty() {
            return Ok(());
        }
        match state.orders.peek(id).await? {
            Some(order) if self.covers_order(state, &order) => Ok(()),
            _ => Err(ApiError::NotFound("order not found".into())),
        }
    }

    /// Not found when the courier works on a campus the operator does not
    /// cover (one who works on none yet is anyone's to review).
    pub fn may_act_on_courier(&self, state: &AppState, courier: &OpenId) -> Result<(), ApiError> {
        match state.dispatch.works_on(courier) {
            Some(campus) if !self.covers(campus.as_str()) => {
                Err(ApiError::NotFound("no such courier".into()))
            }
            _ => Ok(()),
        }
    }

    /// Not found unless the courier works on a campus this operator covers;
    /// money of a courier on no known campus is for operators without a
    /// limit.
    pub fn may_see_money_of(&self, state: &AppState, courier: &OpenId) -> Result<(), ApiError> {
        if self.campuses.is_empty() {
            return Ok(());
        }
        match state.dispatch.works_on(courier) {
            Some(campus) if self.covers(campus.as_str()) => Ok(()),
            _ => Err(ApiError::NotFound("no such withdrawal".into())),
        }
    }

    /// The couriers whose money a limited operator sees (those working on
    /// its campuses); None for an operator without a limit.
    pub fn money_scope(
        &self,
        state: &AppState,
    ) -> Option<std::sync::Arc<std::collections::HashSet<OpenId>>> {
        if self.campuses.is_empty() {
            return None;
        }
        let theirs = state.dispatch.couriers_where(|c| self.covers(c.as_str()));
        Some(std::sync::Arc::new(theirs))
    }

    /// The whole book (ledger proof, reconciliation) is for operators
    /// without a campus limit (403 for the others).
    pub fn sees_whole_book(&self) -> Result<(), ApiError> {
        if self.campuses.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "the whole book is for operators without a campus limit".into(),
            ))
        }
    }

    /// Not found unless a limited operator covers the user: a courier
    /// working on its campuses, or a customer with an order there.
    pub async fn may_act_on_user(&self, state: &AppState, user: &OpenId) -> Result<(), ApiError> {
        if self.campuses.is_empty() {
            return Ok(());
        }
        if state
            .dispatch
            .works_on(user)
            .is_some_and(|c| self.covers(c.as_str()))
        {
            return Ok(());
        }
        let (orders, _) = state
            .orders
            .list(user.clone(), None, USER_ORDERS_LOOKED_AT, None)
            .await?;
        if orders.iter().any(|o| self.covers_order(state, o)) {
            Ok(())
        } else {
            Err(ApiError::NotFound("no such user".into()))
        }
    }

    /// The campus an admin request is about: the one it names (400 when
    /// not served, 403 outside the operator's campuses), else the first
    /// the operator covers.
    pub fn campus(
        &self,
        state: &AppState,
        named: Option<&str>,
    ) -> Result<std::sync::Arc<lastmile_actors::campus::Campus>, ApiError> {
        let Some(id) = named else {
            return state
                .campuses
                .iter()
                .find(|c| self.covers(c.id()))
                .cloned()
                .ok_or_else(|| {
                    ApiError::Forbidden("this operator's campuses are not served here".into())
                });
        };
        let campus = state.campuses.get(id).ok_or_else(|| {
            ApiError::Validation("campus is not a campus this service serves".into())
        })?;
        if !self.covers(id) {
            return Err(ApiError::Forbidden(format!(
                "this operator may not act on campus {id}"
            )));
        }
        Ok(campus.clone())
    }
}

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let given = bearer_token(req).unwrap_or_default();
        let address = format!("sign-in {}", crate::address::client_address(req));
        Box::pin(async move {
            let state = state.ok_or(ApiError::Unavailable)?;
            if state.admin_token.is_none() && !state.operators.any() {
                return Err(ApiError::NotFound("no such route".into()));
            }
            // No token at all is no guess: it is neither struck nor barred.
            if given.is_empty() {
                return Err(ApiError::Unauthorized(
                    "an operator token is required".into(),
                ));
            }
            if !state.strikes.allows(address.clone()).await {
                return Err(ApiError::RateLimited);
            }
            match Operator::of_token(&state, &given) {
                Some(operator) => Ok(operator),
                None => {
                    state.strikes.strike(address);
                    Err(ApiError::Unauthorized(
                        "an operator token is required".into(),
                    ))
                }
            }
        })
    }
}

/// What an admin route needs of the operator's role.
pub trait Needs {
    /// The power.
    const POWER: Power;
}

/// Reading the console and admin API (every role).
pub struct Reads;
/// Couriers, assignments and customers (dispatcher, admin).
pub struct Dispatches;
/// Refunds, disputes, withdrawals, reconciliation (finance, admin).
pub struct Pays;
/// Operators themselves (admin).
pub struct Manages;

impl Needs for Reads {
    const POWER: Power = Power::Read;
}
impl Needs for Dispatches {
    const POWER: Power = Power::Dispatch;
}
impl Needs for Pays {
    const POWER: Power = Power::Money;
}
impl Needs for Manages {
    const POWER: Power = Power::Manage;
}

/// An operator whose role has the power `P` (else 403 naming the role).
pub struct Can<P: Needs>(pub Operator, pub std::marker::PhantomData<P>);

impl<P: Needs> Can<P> {
    /// The operator.
    pub fn operator(&self) -> &Operator {
        &self.0
    }
}

impl<P: Needs + 'static> FromRequest for Can<P> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let operator = Operator::from_request(req, payload);
        Box::pin(async move {
            let operator = operator.await?;
            if operator.role.may(P::POWER) {
                Ok(Can(operator, std::marker::PhantomData))
            } else {
                Err(ApiError::Forbidden(format!(
                    "the {} role may not do this",
                    operator.role
                )))
            }
        })
    }
}

/// The `{id}` of an order route; one that cannot exist is simply not found.
#[derive(Debug, Clone)]
pub struct OrderPath(pub OrderId);

impl FromRequest for OrderPath {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = req
            .match_info()
            .get("id")
            .and_then(|raw| OrderId::parse(raw).ok())
            .map(OrderPath)
            .ok_or_else(|| ApiError::NotFound("order not found".into()));
        std::future::ready(id)
    }
}

/// A JSON body (`application/json`, ≤ 64 KiB) parsed into `T`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = RawBody::take(req, payload);
        Box::pin(async move {
            if !body.is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let bytes = body.read().await?;
            serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
                ApiError::BadRequest(format!("body is not valid JSON for this request: {e}"))
            })
        })
    }
}

/// A JSON body that may be left out: no body, or `null`, reads as `T::default()`.
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = RawBody::take(req, payload);
        Box::pin(async move {
            let Some(bytes) = body.read_unless_empty().await? else {
                return Ok(OptionalJsonBody(T::default()));
            };
            serde_json::from_slice::<Option<T>>(&bytes)
                .map(|body| OptionalJsonBody(body.unwrap_or_default()))
                .map_err(|e| {
                    ApiError::BadRequest(format!("body is not valid JSON for this request: {e}"))
                })
        })
    }
}

/// The body of an action endpoint: nothing, or a JSON object such as `{}`.
pub struct ActionBody;

impl FromRequest for ActionBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = RawBody::take(req, payload);
        Box::pin(async move {
            let Some(bytes) = body.read_unless_empty().await? else {
                return Ok(ActionBody);
            };
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
                .map(|_| ActionBody)
                .map_err(|_| ApiError::BadRequest("this endpoint takes no body, or {}".into()))
        })
    }
}

/// A request body not yet read, with what its headers say about it.
struct RawBody {
    declared: Option<usize>,
    is_json: bool,
    payload: Payload,
}

impl RawBody {
    fn take(req: &HttpRequest, payload: &mut Payload) -> Self {
        Self {
            declared: declared_length(req),
            is_json: is_json(req),
            payload: payload.take(),
        }
    }

    /// The body of a request that may send none: None when it is empty
    /// (or only whitespace), else its bytes, which must be declared JSON.
    async fn read_unless_empty(self) -> Result<Option<web::BytesMut>, ApiError> {
        let is_json = self.is_json;
        let bytes = self.read().await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        Ok(Some(bytes))
    }

    /// Reads the whole body, refusing more than [`BODY_LIMIT`] bytes.
    async fn read(self) -> Result<web::BytesMut, ApiError> {
        if self.declared.is_some_and(|n| n > BODY_LIMIT) {
            return Err(ApiError::PayloadTooLarge);
        }
        read_limited(self.payload).await
    }
}

fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn is_json(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// Reads a whole body stream, refusing more than [`BODY_LIMIT`] bytes
/// (413) and a stream that breaks (400).
pub async fn read_limited(
    payload: impl futures::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>> + Unpin,
) -> Result<web::BytesMut, ApiError> {
    read_up_to(payload, BODY_LIMIT, ApiError::PayloadTooLarge).await
}

/// Reads a whole body stream of at most `limit` bytes (else `too_large`).
pub async fn read_up_to(
    mut payload: impl futures::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>> + Unpin,
    limit: usize,
    too_large: ApiError,
) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("cannot read body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Who is looking at a private photo: a signed-in user, or an operator
/// signed in through the [`Operator`] extractor (so failed operator
/// sign-ins are struck and throttled here as on the admin API).
pub enum PhotoViewer {
    /// A signed-in user.
    User(OpenId),
    /// An operator (limited to campuses or not).
    Operator(Operator),
}

impl FromRequest for PhotoViewer {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        use lastmile_actors::auth::sessions::AuthError;
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req).unwrap_or_default();
        let operator = Operator::from_request(req, payload);
        Box::pin(async move {
            let state = state.ok_or(ApiError::Unavailable)?;
            if token.is_empty() {
                return Err(ApiError::Unauthorized("a bearer token is required".into()));
            }
            match state.sessions.authenticate(&token).await {
                Ok(user) => return Ok(PhotoViewer::User(user)),
                Err(AuthError::Unauthorized) => {}
                Err(other) => return Err(other.into()),
            }
            match operator.await {
                Ok(op) => Ok(PhotoViewer::Operator(op)),
                // No operators configured: the token was simply not a session's.
                Err(ApiError::NotFound(_)) => Err(ApiError::Unauthorized(
                    "missing, unknown or expired token".into(),
                )),
                Err(e) => Err(e),
            }
        })
    }
}
