//! `rm`: forget a container and delete its directory (logs). A running one needs `--force`,
//! which kills it first. The database row goes first: after a crash between the two steps the
//! directory is an orphan, and recovery deletes it.

use std::sync::Arc;

use crate::db::Container;
use crate::error::HostError;
use crate::manager::Manager;

impl Manager {
    pub async fn remove(self: &Arc<Self>, text: &str, force: bool) -> Result<Container, HostError> {
        let c = self.resolve(text)?;
        if !c.status.can_remove() {
            if !force {
                return Err(HostError::Conflict(format!(
                    "container {} is {}: stop it first, or use `rm -f` to kill and remove it",
                    c.name, c.status
                )));
            }
            self.end(&c, None).await?;
        }
        self.remove_stored(&c.id)?;
        Ok(c)
    }

    /// Deletes the row, then the directory. Of two concurrent removals exactly one succeeds:
    /// the other finds no row and says the container is gone.
    pub(crate) fn remove_stored(&self, id: &str) -> Result<(), HostError> {
        if !self.db().remove(id)? {
            return Err(HostError::NotFound(format!("{id} (it was removed meanwhile)")));
        }
        let dir = self.container_dir(id);
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("failed to delete {}: {e}", dir.display());
        }
        Ok(())
    }
}
