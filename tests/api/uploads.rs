//! Photos: `POST /api/v1/uploads` checks the bytes (not the header),
//! strips the EXIF position, and `GET /api/v1/uploads/{id}` shows the photo
//! only to those who may see it; a stored photo survives kill -9.

use std::io::Cursor;
use std::time::Duration;

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test;
use lastmile_actors::wechat::Secret;

use crate::helpers::{spawn_app_with, BinaryApp, Reply, TestApp};

const TOKEN: &str = "operator-secret-token";

/// A small JPEG (gradient), as a phone would send after compression.
pub fn jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
        .expect("encode");
    out
}

/// The JPEG with an EXIF block carrying a GPS marker right after SOI.
fn jpeg_with_position() -> Vec<u8> {
    let mut exif = b"Exif\0\0II*\0\x08\0\0\0\0\0\0\0\0\0".to_vec();
    exif.extend_from_slice(b"GPS 31.0245N 121.4372E");
    let plain = jpeg();
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&exif);
    out.extend_from_slice(&plain[2..]);
    out
}

/// Uploads a JPEG to a running binary as `token`; answers its id.
pub async fn upload_over_http(client: &reqwest::Client, app: &BinaryApp, token: &str) -> String {
    let reply: serde_json::Value = client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(token)
        .header("Content-Type", "image/jpeg")
        .body(jpeg())
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    reply["id"].as_str().expect("upload id").to_owned()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl<S, B> TestApp<S>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    /// Uploads `bytes` as `content_type`.
    pub async fn upload(&self, token: &str, content_type: &str, bytes: Vec<u8>) -> Reply {
        self.send(
            test::TestRequest::post()
                .uri("/api/v1/uploads")
                .insert_header(("Authorization", format!("Bearer {token}")))
                .insert_header(("Content-Type", content_type))
                .set_payload(bytes),
        )
        .await
    }

    /// Uploads a JPEG; answers its id.
    pub async fn upload_photo(&self, token: &str) -> String {
        let reply = self.upload(token, "image/jpeg", jpeg()).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["id"].as_str().expect("id").to_owned()
    }

    /// The photo as `bearer` gets it: status, content type, bytes.
    pub async fn photo(&self, bearer: Option<&str>, id: &str) -> (StatusCode, String, Vec<u8>) {
        let mut req = test::TestRequest::get().uri(&format!("/api/v1/uploads/{id}"));
        if let Some(token) = bearer {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let res = test::call_service(&self.svc, req.to_request()).await;
        let status = res.status();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = test::read_body(res).await.to_vec();
        (status, content_type, bytes)
    }
}

#[actix_rt::test]
async fn a_photo_is_stored_without_its_position_and_shown_to_its_uploader_and_operators() {
    let app = spawn_app_with(|s| s.admin.token = Some(Secret::new(TOKEN))).await;
    let (token, _) = app.login("uploader").await;
    let sent = jpeg_with_position();
    assert!(contains(&sent, b"GPS 31.0245N"));
    let reply = app.upload(&token, "image/jpeg", sent).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let id = reply.body["id"].as_str().expect("id");
    assert!(
        reply.body["url"]
            .as_str()
            .expect("url")
            .ends_with(&format!("/api/v1/uploads/{id}")),
        "{}",
        reply.body
    );

    let (status, content_type, bytes) = app.photo(Some(&token), id).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "image/jpeg")
    );
    assert!(!contains(&bytes, b"GPS 31.0245N"), "the position is gone");
    assert!(!contains(&bytes, b"Exif\0\0"));
    let decoded = image::load_from_memory(&bytes).expect("still a photo");
    assert_eq!((decoded.width(), decoded.height()), (64, 48));

    let (status, _, operator_bytes) = app.photo(Some(TOKEN), id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(operator_bytes, bytes);

    // Nobody else learns it exists.
    let (stranger, _) = app.login("stranger").await;
    assert_eq!(
        app.photo(Some(&stranger), id).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.photo(None, id).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.photo(Some("wrong-token"), id).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_rt::test]
async fn a_png_is_taken_by_its_bytes() {
    let app = spawn_app_with(|_| {}).await;
    let (token, _) = app.login("png-uploader").await;
    let img = image::RgbImage::from_fn(10, 10, |x, _| image::Rgb([x as u8, 0, 0]));
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encode");
    // The header says JPEG; the bytes say PNG, and the bytes win.
    let reply = app.upload(&token, "image/jpeg", png).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let (status, content_type, _) = app
        .photo(Some(&token), reply.body["id"].as_str().expect("id"))
        .await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "image/png")
    );
}

#[actix_rt::test]
async fn what_is_not_a_photo_is_refused_and_nothing_is_stored() {
    let app = spawn_app_with(|_| {}).await;
    let (token, _) = app.login("bad-uploader").await;
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "application/json",
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "image/gif",
            b"GIF89a".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "image/png",
            b"hello, not a picture".to_vec(),
            StatusCode::BAD_REQUEST,
            "validation",
        ),
        (
            "image/jpeg",
            jpeg()[..60].to_vec(),
            StatusCode::BAD_REQUEST,
            "validation",
        ),
        (
            "image/jpeg",
            vec![0xFF; 2 * 1024 * 1024 + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (content_type, bytes, status, code) in cases {
        let reply = app.upload(&token, content_type, bytes).await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{content_type}: {}",
            reply.body
        );
        assert!(reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let anonymous = app
        .send(
            test::TestRequest::post()
                .uri("/api/v1/uploads")
                .insert_header(("Content-Type", "image/jpeg"))
                .set_payload(jpeg()),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let stored = std::fs::read_dir(app._dir.path().join("data/uploads"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "a refused upload leaves no file");
    for id in [
        "nope",
        "U0000000000000000000000000000000",
        "../../etc/passwd",
    ] {
        assert_eq!(
            app.photo(Some(&token), id).await.0,
            StatusCode::NOT_FOUND,
            "{id}"
        );
    }
}

#[actix_rt::test]
async fn an_acknowledged_photo_survives_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = BinaryApp::start(&dir.path().join("data"), &[]).await;
    let client = reqwest::Client::new();
    let (token, _) = app.login(&client, "durable-uploader").await;
    let sent = jpeg();
    let reply: serde_json::Value = client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .header("Content-Type", "image/jpeg")
        .body(sent.clone())
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let id = reply["id"].as_str().expect("id").to_owned();
    app.kill9();
    app.launch().await;
    let res = client
        .get(app.url(&format!("/api/v1/uploads/{id}")))
        .bearer_auth(&token)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    assert_eq!(res.bytes().await.expect("body").to_vec(), sent);
    app.kill9();
}

/// A PNG whose header claims `width` × `height` RGBA pixels and whose
/// data is a few compressed zero rows: a decompression bomb's shape.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    // One IDAT of zlib-compressed zero rows: small however large it claims.
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgba);
        let mut writer = encoder.write_header().expect("header");
        let mut stream = writer.stream_writer().expect("stream");
        let row = vec![0u8; width as usize * 4];
        for _ in 0..64 {
            std::io::Write::write_all(&mut stream, &row).expect("row");
        }
    }
    out
}

#[actix_web::test]
async fn an_image_over_25_megapixels_is_refused_before_it_is_decoded() {
    let app = spawn_app_with(|_| {}).await;
    let (token, _) = app.login("bomb-maker").await;
    for (width, height) in [(10_000, 10_000), (5_001, 5_000)] {
        let bomb = png_claiming(width, height);
        assert!(bomb.len() < 400 * 1024, "{} bytes", bomb.len());
        let refused = app.upload(&token, "image/png", bomb).await;
        assert_eq!(
            refused.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{width}×{height}: {}",
            refused.body
        );
        assert_eq!(refused.code(), "payload_too_large");
        assert!(refused.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("25 megapixels")));
    }
}

#[actix_web::test]
async fn a_user_stores_at_most_uploads_per_day_photos_a_day() {
    let app = spawn_app_with(|s| s.uploads.per_day = 3).await;
    let (token, _) = app.login("busy-photographer").await;
    let uploads: Vec<Reply> =
        futures::future::join_all((0..5).map(|_| app.upload(&token, "image/jpeg", jpeg()))).await;
    let stored = uploads
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let refused: Vec<&Reply> = uploads
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(
        (stored, refused.len()),
        (3, 2),
        "at once, in flight counted"
    );
    assert_eq!(refused[0].code(), "rate_limited");
    assert!(refused[0].body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("at most 3 photos")));
    // A refused photo does not count; another user has their own allowance.
    let (other, _) = app.login("other-photographer").await;
    assert_eq!(
        app.upload(&other, "image/jpeg", jpeg()).await.status,
        StatusCode::CREATED
    );
    let again = app.upload(&token, "image/jpeg", jpeg()).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
}
