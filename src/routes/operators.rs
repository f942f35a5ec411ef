//! Operators: who is signed in (`/api/v1/admin/me`), and for admins the
//! list, adding one (its token shown once) and revoking one.

use actix_web::{web, HttpResponse};
use lastmile_actors::auth::operators::OperatorError;
use lastmile_actors::domain::{manages, OperatorName, OperatorRecord, Power, Role};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ActionBody, Can, JsonBody, Manages, Operator, Reads};
use crate::routes::admin::{acted, private};
use crate::state::AppState;

/// The signed-in operator, and what their role may do (the console hides
/// the rest).
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// Their name (`admin` for `admin.token`).
    #[schema(value_type = String)]
    name: OperatorName,
    /// Their role.
    role: Role,
    /// May review and suspend couriers, reassign, force offline, block.
    dispatch: bool,
    /// May refund, resolve disputes, handle withdrawals, reconcile.
    money: bool,
    /// May manage operators.
    manage: bool,
    /// The campuses served here that they see and act on.
    campuses: Vec<CampusChoice>,
}

/// A campus an operator may switch to.
#[derive(Serialize, ToSchema)]
pub struct CampusChoice {
    /// Its id (`campus` in admin queries).
    id: String,
    /// Its name.
    name: String,
}

/// An operator as the admin API shows them (never their token).
#[derive(Serialize, ToSchema)]
pub struct OperatorView {
    /// Name.
    #[schema(value_type = String)]
    name: OperatorName,
    /// Role.
    role: Role,
    /// Campus limits (empty: all).
    campuses: Vec<String>,
    /// When added.
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// When revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    revoked_at: Option<OffsetDateTime>,
}

impl From<OperatorRecord> for OperatorView {
    fn from(o: OperatorRecord) -> Self {
        Self {
            name: o.name,
            role: o.role,
            campuses: o.campuses,
            created_at: o.created_at,
            revoked_at: o.revoked_at,
        }
    }
}

/// Every operator.
#[derive(Serialize, ToSchema)]
pub struct OperatorList {
    /// By name.
    operators: Vec<OperatorView>,
}

/// A new operator and their token (shown this once).
#[derive(Serialize, ToSchema)]
pub struct NewOperator {
    /// The operator.
    #[serde(flatten)]
    operator: OperatorView,
    /// Their bearer token; only its hash is kept.
    token: String,
}

/// `{"name", "role", "campuses"}` as sent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AddOperatorBody {
    /// 1–32 of A-Z, a-z, 0-9, `_`, `.`, `-`.
    #[schema(required = true, value_type = String, example = "li.lei")]
    name: Option<String>,
    /// viewer, dispatcher, finance or admin.
    #[schema(required = true, value_type = String, example = "dispatcher")]
    role: Option<String>,
    /// Campus ids the operator is limited to (absent: all).
    #[schema(value_type = Option<Vec<String>>)]
    campuses: Option<Vec<String>>,
}

impl Operator {
    /// Whether this operator may see and revoke `other`.
    fn manages(&self, other: &OperatorRecord) -> bool {
        manages(&self.campuses, &other.campuses)
    }
}

fn operator_error(e: OperatorError) -> ApiError {
    match e {
        OperatorError::Exists(_) => ApiError::Conflict(e.to_string()),
        OperatorError::NotFound(_) => ApiError::NotFound(e.to_string()),
        OperatorError::Storage(_) | OperatorError::Mailbox(_) => {
            tracing::warn!(error = %lastmile_actors::errors::chain(&e), "operators unavailable");
            ApiError::Unavailable
        }
    }
}

/// Who is signed in and what they may do.
#[utoipa::path(
    get,
    path = "/api/v1/admin/me",
    tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, description = "The signed-in operator", body = Me))
)]
pub async fn me(Can(op, _): Can<Reads>, state: web::Data<AppState>) -> HttpResponse {
    let campuses = state
        .campuses
        .iter()
        .filter(|c| op.covers(c.id()))
        .map(|c| CampusChoice {
            id: c.id().to_owned(),
            name: c.name().to_owned(),
        })
        .collect();
    private(Me {
        campuses,
        dispatch: op.role.may(Power::Dispatch),
        money: op.role.may(Power::Money),
        manage: op.role.may(Power::Manage),
        name: op.name,
        role: op.role,
    })
}

/// Every operator (admins only).
#[utoipa::path(
    get,
    path = "/api/v1/admin/operators",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The operators, revoked ones included", body = OperatorList),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn operators(
    Can(op, _): Can<Manages>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let all = state.operators.list().await.map_err(operator_error)?;
    Ok(private(OperatorList {
        operators: all
            .into_iter()
            .filter(|o| op.manages(o))
            .map(OperatorView::from)
            .collect(),
    }))
}

/// Adds an operator; the answer carries their token, shown this once.
#[utoipa::path(
    post,
    path = "/api/v1/admin/operators",
    tag = "admin",
    security(("bearer" = [])),
    request_body = AddOperatorBody,
    responses(
        (status = 201, description = "Added", body = NewOperator),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 409, description = "An operator of that name exists", body = ErrorBody),
    )
)]
pub async fn add_operator(
    Can(op, _): Can<Manages>,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<AddOperatorBody>,
) -> Result<HttpResponse, ApiError> {
    let name = body
        .name
        .ok_or_else(|| ApiError::Validation("name is required".into()))?;
    let name = OperatorName::parse(&name)?;
    if name.as_str() == OperatorName::BOOTSTRAP {
        return Err(ApiError::Validation(
            "name admin is admin.token's; choose another".into(),
        ));
    }
    let role = body.role.as_deref().and_then(Role::parse).ok_or_else(|| {
        ApiError::Validation("role must be viewer, dispatcher, finance or admin".into())
    })?;
    let campuses = body.campuses.unwrap_or_default();
    if !campuses
        .iter()
        .all(|c| lastmile_actors::campus::is_campus_id(c))
    {
        return Err(ApiError::Validation(
            "campuses must be campus ids: 1-16 of a-z, 0-9, -".into(),
        ));
    }
    state
        .campuses
        .check_served(&campuses)
        .map_err(ApiError::Validation)?;
    if !manages(&op.campuses, &campuses) {
        return Err(ApiError::Forbidden(format!(
            "an operator limited to campuses adds only operators limited within them ({})",
            op.campuses.join(", ")
        )));
    }
    let (record, token) = state
        .operators
        .add(name, role, campuses)
        .await
        .map_err(operator_error)?;
    acted(&op, "add_operator");
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(NewOperator {
            operator: record.into(),
            token,
        }))
}

/// Revokes an operator's token at once.
#[utoipa::path(
    post,
    path = "/api/v1/admin/operators/{name}/revoke",
    tag = "admin",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The operator's name")),
    responses(
        (status = 200, description = "Revoked", body = OperatorView),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No live operator of that name", body = ErrorBody),
    )
)]
pub async fn revoke_operator(
    Can(op, _): Can<Manages>,
    state: web::Data<AppState>,
    name: web::Path<String>,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound(format!("no operator named {name}"));
    let name = OperatorName::parse(&name).map_err(|_| not_found())?;
    // A limited operator does not learn of operators beyond its campuses.
    let live = state.operators.list().await.map_err(operator_error)?;
    let theirs = live
        .iter()
        .find(|o| o.name == name && o.revoked_at.is_none())
        .is_some_and(|o| op.manages(o));
    if !theirs {
        return Err(not_found());
    }
    let record = state.operators.revoke(name).await.map_err(operator_error)?;
    acted(&op, "revoke_operator");
    Ok(private(OperatorView::from(record)))
}
