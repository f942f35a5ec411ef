//! wxacode share codes: scenes and pages.

use super::*;

/// A wxacode `scene`: 1–32 characters of the set WeChat allows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scene(String);

impl Scene {
    /// Parses a scene (`[0-9A-Za-z]` and `!#$&'()*+,/:;=?@-._~`).
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"!#$&'()*+,/:;=?@-._~".contains(&b);
        if !s.is_empty() && s.len() <= 32 && s.bytes().all(allowed) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "scene must be 1-32 characters of 0-9 A-Z a-z and !#$&'()*+,/:;=?@-._~",
            ))
        }
    }

    /// The scene.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A mini-program page path for wxacode (empty = the home page).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PagePath(String);

impl PagePath {
    /// Parses a page: at most 128 characters of `[A-Za-z0-9/_-]`, no leading `/`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let ok = s.len() <= 128
            && !s.starts_with('/')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "page must be a mini-program path like pages/index/index (no leading /)",
            ))
        }
    }

    /// The page.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
