//! Photos: `POST /api/v1/uploads` (a JPEG or PNG body) and
//! `GET /api/v1/uploads/{id}` for those who may see it.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use lastmile_actors::domain::{Upload, UploadId};
use lastmile_actors::objects::PrivateObject;
use lastmile_actors::uploads::photo::MAX_PHOTO_BYTES;
use lastmile_actors::uploads::Viewer;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{read_up_to, Caller, Operator, PhotoViewer};
use crate::state::AppState;

/// A stored photo: its id (what order and courier bodies name) and where
/// those who may see it read it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadReply {
    /// The upload id.
    #[schema(value_type = String, pattern = "^U[0-9A-V]{31}$")]
    id: UploadId,
    /// `GET` it with the same bearer token.
    url: String,
}

/// The path a photo is read at.
pub fn url_of(state: &AppState, id: &UploadId) -> String {
    format!(
        "{}/api/v1/uploads/{id}",
        state.public_base.trim_end_matches('/')
    )
}

fn is_photo_type(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let essence = value.to_str().unwrap_or("").split(';').next().unwrap_or("");
    let essence = essence.trim();
    essence.eq_ignore_ascii_case("image/jpeg") || essence.eq_ignore_ascii_case("image/png")
}

/// Uploads a photo (a student card, proof of delivery, dispute evidence):
/// private to the uploader and operators until an order it proves shares
/// it with that order's customer and courier. EXIF (with any GPS position)
/// is removed.
#[utoipa::path(
    post,
    path = "/api/v1/uploads",
    tag = "uploads",
    security(("bearer" = [])),
    request_body(content = String, description = "The photo (JPEG or PNG), at most 2 MiB", content_type = "image/jpeg"),
    responses(
        (status = 201, description = "Stored", body = UploadReply),
        (status = 400, description = "Not a whole JPEG or PNG image", body = ErrorBody),
        (status = 413, description = "Over 2 MiB, or over 25 megapixels", body = ErrorBody),
        (status = 429, description = "The user stored uploads.per_day photos today", body = ErrorBody),
        (status = 415, description = "Not image/jpeg or image/png", body = ErrorBody),
    )
)]
pub async fn upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    Caller(me): Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if !is_photo_type(&req) {
        return Err(ApiError::NotAPhotoType);
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_PHOTO_BYTES) {
        return Err(ApiError::PhotoTooLarge);
    }
    let body = read_up_to(payload, MAX_PHOTO_BYTES, ApiError::PhotoTooLarge).await?;
    let stored = state.uploads.store(me, body.to_vec()).await?;
    let url = url_of(&state, &stored.id);
    Ok(HttpResponse::Created().json(UploadReply { id: stored.id, url }))
}

/// Not found unless an operator limited to campuses covers the photo: the
/// campus of the order it proves, else the campus its uploader works on
/// (a photo of someone on no campus yet — an applicant's student card —
/// is anyone's to review).
async fn may_see_photo(state: &AppState, op: &Operator, upload: &Upload) -> Result<(), ApiError> {
    if op.campuses.is_empty() {
        return Ok(());
    }
    let covered = match &upload.order {
        Some(order) => state
            .orders
            .peek(order)
            .await?
            .is_some_and(|o| op.covers_order(state, &o)),
        None => state
            .dispatch
            .works_on(&upload.owner)
            .is_none_or(|c| op.covers(c.as_str())),
    };
    if covered {
        Ok(())
    } else {
        Err(ApiError::NotFound("upload not found".into()))
    }
}

/// A photo, for its uploader, operators and — for a delivery or dispute
/// photo — the order's customer and courier; 404 for anyone else.
#[utoipa::path(
    get,
    path = "/api/v1/uploads/{id}",
    tag = "uploads",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Upload id")),
    responses(
        (status = 200, description = "The photo", content_type = "image/jpeg"),
        (status = 302, description = "A short-lived signed URL of the photo (Qiniu)"),
        (status = 401, description = "No valid user or operator token", body = ErrorBody),
        (status = 404, description = "No such photo, or not one the caller may see", body = ErrorBody),
        (status = 429, description = "Too many failed operator sign-ins from this address", body = ErrorBody),
    )
)]
pub async fn photo(
    state: web::Data<AppState>,
    viewer: PhotoViewer,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = UploadId::parse(&id).map_err(|_| ApiError::NotFound("upload not found".into()))?;
    let (upload, object) = match &viewer {
        PhotoViewer::User(user) => state.uploads.open(id, Viewer::User(user.clone())).await?,
        PhotoViewer::Operator(op) => {
            let opened = state.uploads.open(id, Viewer::Operator).await?;
            may_see_photo(&state, op, &opened.0).await?;
            opened
        }
    };
    Ok(match object {
        PrivateObject::Bytes(bytes) => HttpResponse::Ok()
            .content_type(upload.image.content_type())
            // Private: no shared cache may keep it.
            .insert_header((header::CACHE_CONTROL, "private, max-age=300"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(bytes),
        PrivateObject::Signed(url) => HttpResponse::Found()
            .insert_header((header::LOCATION, url))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
    })
}
