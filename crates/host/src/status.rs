//! `Status`: where a container is in its life, and which moves between states are legal.
//!
//! Illegal requests are errors (`HostError::Conflict`), never silent no-ops.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Stored, not started yet.
    Created,
    /// The guest is running.
    Running,
    /// The guest ended and its restart policy will start it again after a pause.
    Restarting,
    /// The guest ended (or was stopped) and will not be started again on its own.
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [Status::Created, Status::Running, Status::Restarting, Status::Exited].into_iter().find(|x| x.as_str() == s)
    }

    /// A guest can be started from here (`start`, `restart` after a stop).
    pub fn can_start(self) -> bool {
        matches!(self, Status::Created | Status::Exited)
    }

    /// There is something to stop.
    pub fn can_stop(self) -> bool {
        matches!(self, Status::Running | Status::Restarting)
    }

    /// `rm` without `--force` is allowed.
    pub fn can_remove(self) -> bool {
        matches!(self, Status::Created | Status::Exited)
    }

    /// The transitions the supervisor itself makes.
    pub fn can_become(self, next: Status) -> bool {
        use Status::*;
        matches!(
            (self, next),
            (Created, Running)
                | (Running, Exited)
                | (Running, Restarting)
                | (Restarting, Running)
                | (Restarting, Exited)
                | (Exited, Running)
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;

    #[test]
    fn guards() {
        assert!(Created.can_start() && Exited.can_start() && !Running.can_start() && !Restarting.can_start());
        assert!(Running.can_stop() && Restarting.can_stop() && !Exited.can_stop());
        assert!(!Running.can_remove() && Exited.can_remove());
        assert!(Running.can_become(Exited) && !Exited.can_become(Restarting) && !Created.can_become(Exited));
        for s in [Created, Running, Restarting, Exited] {
            assert_eq!(super::Status::parse(s.as_str()), Some(s));
        }
    }
}
