//! The API's error type and its one mapping to HTTP.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use lastmile_actors::auth::sessions::AuthError;
use lastmile_actors::dispatch::DispatchError;
use lastmile_actors::domain::ValidationError;
use lastmile_actors::ledger::{LedgerError, WithdrawalError};
use lastmile_actors::notify::formid::PoolError;
use lastmile_actors::orders::OrderError;
use lastmile_actors::payments::PaymentError;
use lastmile_actors::uploads::photo::PhotoError;
use lastmile_actors::uploads::UploadError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The code (stable, for programs) and message (for people) of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `bad_request`, `validation`, `unauthorized`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `conflict`, `payload_too_large`,
    /// `unsupported_media_type`, `rate_limited` or `unavailable`.
    #[schema(value_type = String, example = "validation")]
    pub code: &'static str,
    /// Names the offending field where there is one.
    #[schema(example = "pickup.place_id is required")]
    pub message: String,
}

/// Every way a request can fail, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not parseable JSON, or a field has the wrong JSON type.
    #[error("{0}")]
    BadRequest(String),
    /// A field breaks a rule; the message names the field.
    #[error("{0}")]
    Validation(String),
    /// No valid bearer token, or a rejected login code.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource (or not the caller's).
    #[error("{0}")]
    NotFound(String),
    /// The route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Illegal state transition or lost race.
    #[error("{0}")]
    Conflict(String),
    /// Body over the limit.
    #[error("request body is larger than 64 KiB")]
    PayloadTooLarge,
    /// A body that is not application/json.
    #[error("request body must be application/json")]
    UnsupportedMediaType,
    /// A photo over its limit.
    #[error("a photo is at most 2 MiB")]
    PhotoTooLarge,
    /// An upload whose Content-Type is not an image type taken.
    #[error("request body must be image/jpeg or image/png")]
    NotAPhotoType,
    /// Over `http.rate_limit`.
    #[error("too many requests")]
    RateLimited,
    /// Past a per-user daily allowance (the message names it).
    #[error("{0}")]
    DailyLimit(String),
    /// An image with more pixels than may be decoded.
    #[error("an image is at most 25 megapixels (and 10000 pixels on a side)")]
    TooManyPixels,
    /// Storage, WeChat or an actor is down; the cause is logged, not shown.
    #[error("service temporarily unavailable")]
    Unavailable,
}

impl ApiError {
    /// The snake_case code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Validation(_) => "validation",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge | ApiError::PhotoTooLarge | ApiError::TooManyPixels => {
                "payload_too_large"
            }
            ApiError::UnsupportedMediaType | ApiError::NotAPhotoType => "unsupported_media_type",
            ApiError::RateLimited | ApiError::DailyLimit(_) => "rate_limited",
            ApiError::Unavailable => "unavailable",
        }
    }

    /// The error a bare status stands for (used to dress framework errors).
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => ApiError::Unauthorized("authentication required".into()),
            403 => ApiError::Forbidden("forbidden".into()),
            404 => ApiError::NotFound("not found".into()),
            405 => ApiError::MethodNotAllowed,
            409 => ApiError::Conflict("conflict".into()),
            413 => ApiError::PayloadTooLarge,
            415 => ApiError::UnsupportedMediaType,
            429 => ApiError::RateLimited,
            400..=499 => ApiError::BadRequest("bad request".into()),
            _ => ApiError::Unavailable,
        }
    }

    fn unavailable(cause: &dyn std::error::Error) -> Self {
        let chain = lastmile_actors::errors::chain(cause);
        tracing::warn!(cause = %chain, "answering 503");
        ApiError::Unavailable
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Validation(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge | ApiError::PhotoTooLarge | ApiError::TooManyPixels => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::UnsupportedMediaType | ApiError::NotAPhotoType => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::RateLimited | ApiError::DailyLimit(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
            },
        })
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::Validation(e.0)
    }
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::NotFound => ApiError::NotFound("order not found".into()),
            OrderError::Transition(t) => ApiError::Conflict(t.to_string()),
            OrderError::Forbidden(m) => ApiError::Forbidden(m.into()),
            OrderError::TooManyUnpaid(_) => ApiError::Conflict(e.to_string()),
            OrderError::Invalid(v) => ApiError::Validation(v.0),
            OrderError::Conflict(m) => ApiError::Conflict(m.into()),
            OrderError::Storage(_) | OrderError::Unavailable => ApiError::unavailable(&e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::CodeRejected => {
                ApiError::Unauthorized("WeChat rejected the login code".into())
            }
            AuthError::Unauthorized => {
                ApiError::Unauthorized("a valid bearer token is required".into())
            }
            AuthError::WeChat(_) | AuthError::Storage(_) | AuthError::Mailbox(_) => {
                ApiError::unavailable(&e)
            }
        }
    }
}

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::NotFound => ApiError::NotFound("order not found".into()),
            PaymentError::Forbidden(m) => ApiError::Forbidden(m.into()),
            PaymentError::Conflict(m) => ApiError::Conflict(m),
            PaymentError::WeChat(_)
            | PaymentError::Storage(_)
            | PaymentError::Orders(_)
            | PaymentError::Mailbox(_)
            | PaymentError::Inconsistent(_) => ApiError::unavailable(&e),
        }
    }
}

impl From<WithdrawalError> for ApiError {
    fn from(e: WithdrawalError) -> Self {
        match e {
            WithdrawalError::Validation(m) => ApiError::Validation(m),
            WithdrawalError::Conflict(m) => ApiError::Conflict(m),
            WithdrawalError::NotFound => ApiError::NotFound("no such withdrawal".into()),
            WithdrawalError::Anomaly(_) => ApiError::Conflict(e.to_string()),
            WithdrawalError::Ledger(_) => ApiError::unavailable(&e),
        }
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        ApiError::unavailable(&e)
    }
}

impl From<PoolError> for ApiError {
    fn from(e: PoolError) -> Self {
        ApiError::unavailable(&e)
    }
}

impl From<lastmile_actors::content::Refused> for ApiError {
    fn from(e: lastmile_actors::content::Refused) -> Self {
        ApiError::Validation(e.to_string())
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::Photo(PhotoError::TooLarge) => ApiError::PhotoTooLarge,
            UploadError::Photo(PhotoError::TooManyPixels) => ApiError::TooManyPixels,
            UploadError::DailyLimit(_) => ApiError::DailyLimit(e.to_string()),
            UploadError::Photo(p) => ApiError::Validation(format!("body: {p}")),
            UploadError::NotFound => ApiError::NotFound("upload not found".into()),
            UploadError::Taken => ApiError::Conflict(e.to_string()),
            UploadError::Unavailable(_) => ApiError::unavailable(&e),
        }
    }
}

impl From<DispatchError> for ApiError {
    fn from(e: DispatchError) -> Self {
        match e {
            DispatchError::Forbidden(m) => ApiError::Forbidden(m.into()),
            DispatchError::Conflict(m) => ApiError::Conflict(m),
            DispatchError::NotFound => ApiError::NotFound("not found".into()),
            DispatchError::Invalid(m) => ApiError::Validation(m),
            DispatchError::UnknownCourier => ApiError::NotFound("no such courier".into()),
            DispatchError::Unavailable(_) => ApiError::unavailable(&e),
        }
    }
}
