//! Local objects beside a sled store: files, as every release kept them
//! (share images in `objects.local_dir`, photos in the store's `uploads/`).

use std::path::PathBuf;

use super::*;
use crate::domain::{ObjectKey, StoredObject, Visibility};
use crate::storage::{Committing, ObjectRepo};

/// Objects as files in two directories.
#[derive(Clone)]
pub struct SledObjects {
    public: PathBuf,
    private: PathBuf,
}

impl SledObjects {
    /// Public objects in `public`, private ones in `private`.
    pub(super) fn new(public: PathBuf, private: PathBuf) -> Self {
        Self { public, private }
    }

    fn dir(&self, visibility: Visibility) -> &Path {
        match visibility {
            Visibility::Public => &self.public,
            Visibility::Private => &self.private,
        }
    }
}

/// A file's MIME type from its name (files keep no other).
fn content_type_of(key: &ObjectKey) -> &'static str {
    let name = key.as_str();
    if name.ends_with(".png") {
        "image/png"
    } else if name.ends_with(".jpg") || name.ends_with(".jpeg") {
        "image/jpeg"
    } else {
        "application/octet-stream"
    }
}

fn io_error(e: std::io::Error) -> StorageError {
    StorageError::Engine(Box::new(e))
}

impl ObjectRepo for SledObjects {
    /// Writes the file durably before answering (renamed into place, so a
    /// reader never sees half an image): the record naming it is about to
    /// be acknowledged.
    fn put_object(&self, object: &StoredObject) -> Result<(), StorageError> {
        let dir = self.dir(object.visibility);
        let path = dir.join(object.key.as_str());
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let tmp = path.with_extension("tmp");
            let mut file = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut file, &object.bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(io_error)
    }

    fn get_object(
        &self,
        visibility: Visibility,
        key: &ObjectKey,
    ) -> Result<Option<StoredObject>, StorageError> {
        match std::fs::read(self.dir(visibility).join(key.as_str())) {
            Ok(bytes) => Ok(Some(StoredObject {
                key: key.clone(),
                visibility,
                content_type: content_type_of(key).to_owned(),
                bytes,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(e)),
        }
    }

    fn object_keys(&self) -> Result<Vec<(Visibility, ObjectKey)>, StorageError> {
        let mut keys = Vec::new();
        for visibility in [Visibility::Public, Visibility::Private] {
            let entries = match std::fs::read_dir(self.dir(visibility)) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(e)),
            };
            let mut names: Vec<ObjectKey> = entries
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                // A `.tmp` is a write that never finished.
                .filter(|name| !name.ends_with(".tmp"))
                .filter_map(|name| ObjectKey::parse(&name).ok())
                .collect();
            names.sort();
            keys.extend(names.into_iter().map(|key| (visibility, key)));
        }
        Ok(keys)
    }

    fn commit(&self) -> Committing {
        // Every put was durable before it answered.
        Box::pin(async { Ok(()) })
    }
}
