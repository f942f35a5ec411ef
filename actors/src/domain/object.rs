//! Objects kept by the service itself (`objects.backend = "local"`): share
//! images anyone may fetch and photos only a checked reader may.

use std::fmt;

use super::*;

/// Who may read an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Anyone, under `/files/` (share images).
    Public,
    /// Only through a route that checked the reader (uploaded photos).
    Private,
}

/// An object's key: a flat file name of `[A-Za-z0-9._-]`, no leading dot, at
/// most 128 bytes (so it is safe as a file name on every engine).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Parses a key.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let safe = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if !s.is_empty() && s.len() <= 128 && !s.starts_with('.') && s.bytes().all(safe) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "an object key is 1-128 characters of A-Z a-z 0-9 . _ - and does not start with a dot",
            ))
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype!(ObjectKey);

/// An object with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Its key, unique per visibility.
    pub key: ObjectKey,
    /// Who may read it.
    pub visibility: Visibility,
    /// Its MIME type.
    pub content_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_flat_safe_names() {
        assert!(ObjectKey::parse("wxacode-0123abcd.png").is_ok());
        for bad in ["", "../etc/passwd", ".hidden", "a/b.png", "a b.png"] {
            assert!(ObjectKey::parse(bad).is_err(), "{bad}");
        }
        assert!(ObjectKey::parse(&"a".repeat(129)).is_err());
    }
}
