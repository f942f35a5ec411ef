//! The operators actor's repository: the `operators` tree (name → record,
//! the token only as its hash).

use super::*;

/// The operators actor's tree.
#[derive(Clone)]
pub struct OperatorRepo(pub(super) Store);

impl OperatorRepo {
    /// Saves an operator.
    pub fn put_operator(&self, operator: &OperatorRecord) -> Result<(), StorageError> {
        self.0
            .inner
            .operators
            .insert(operator.name.as_str().as_bytes(), store(operator)?)?;
        Ok(())
    }

    /// Every operator, revoked ones included, by name.
    pub fn all_operators(&self) -> Result<Vec<OperatorRecord>, StorageError> {
        let mut all = Vec::new();
        for item in self.0.inner.operators.iter() {
            let (key, value) = item?;
            all.push(load(&value, &String::from_utf8_lossy(&key))?);
        }
        Ok(all)
    }

    /// Waits until every write made before this call is on disk.
    pub async fn commit(&self) -> Result<(), StorageError> {
        self.0.commit().await
    }

    /// Makes every write so far durable, blocking (the command line).
    pub fn flush_blocking(&self) -> Result<(), StorageError> {
        self.0.flush_blocking()
    }
}
