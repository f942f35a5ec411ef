//! Uploaded photos: their id and what is known about them. Pure.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::*;

/// An upload id: `U` and 31 characters of base32hex (time, then random),
/// unguessable, so knowing one grants nothing by itself.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^U[0-9A-V]{31}$")]
pub struct UploadId(String);

impl UploadId {
    /// A fresh id made at `now`.
    pub fn generate(now: OffsetDateTime) -> Self {
        Self(timed_id('U', now))
    }

    /// Parses an id received from a client.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if is_timed_id(s, 'U') {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError(
                "an upload id is U and 31 characters of 0-9, A-V".into(),
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype!(UploadId);

/// The image types accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageType {
    /// `image/jpeg`.
    Jpeg,
    /// `image/png`.
    Png,
}

impl ImageType {
    /// The MIME type.
    pub fn content_type(self) -> &'static str {
        match self {
            ImageType::Jpeg => "image/jpeg",
            ImageType::Png => "image/png",
        }
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            ImageType::Jpeg => "jpg",
            ImageType::Png => "png",
        }
    }
}

/// A stored photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Its id.
    pub id: UploadId,
    /// Who uploaded it.
    pub owner: OpenId,
    /// JPEG or PNG.
    pub image: ImageType,
    /// Stored size in bytes.
    pub size: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The order it proves (a delivery or dispute photo): that order's
    /// customer and courier may see it too.
    pub order: Option<OrderId>,
    /// When it was uploaded.
    pub created_at: OffsetDateTime,
}

impl Upload {
    /// The object-store key of the photo.
    pub fn object_key(&self) -> String {
        format!("upload-{}.{}", self.id.as_str(), self.image.extension())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_back_and_refuse_anything_else() {
        let id = UploadId::generate(now_utc());
        assert_eq!(UploadId::parse(id.as_str()).expect("parses"), id);
        for bad in [
            "",
            "U123",
            "W0123456789ABCDEFGHIJKLMNOPQRSTU",
            &id.as_str().to_lowercase(),
        ] {
            assert!(UploadId::parse(bad).is_err(), "{bad}");
        }
    }
}
