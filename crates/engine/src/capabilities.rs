//! `Capabilities`: everything a container may touch on the host, as plain data.
//!
//! `Capabilities::default()` grants **nothing**: no preopened directories, no environment
//! variables, no arguments beyond the program name, no network (no sockets, no name lookups),
//! no current directory, no inference models. Stdio is the one default grant: stdin, stdout and stderr are the
//! caller's, as with `docker run -i`. The one function that turns this into a WASI context is
//! [`crate::wasi::build_ctx`].

use std::path::PathBuf;
use std::sync::Arc;

use crate::net::NetPolicy;
use crate::output::GuestOutput;

/// A host directory made visible to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    pub host: PathBuf,
    pub guest: String,
    /// Read-only: no create, write, truncate, rename into, link into, or metadata change.
    pub read_only: bool,
}

impl Preopen {
    /// Parses the `-v/--dir` syntax `HOST[:GUEST][:ro|:rw]`; GUEST defaults to HOST.
    pub fn parse(spec: &str) -> Result<Preopen, String> {
        let mut parts: Vec<&str> = spec.split(':').collect();
        let mut read_only = false;
        if parts.len() > 1 {
            match *parts.last().unwrap() {
                "ro" => {
                    read_only = true;
                    parts.pop();
                }
                "rw" => {
                    parts.pop();
                }
                _ => {}
            }
        }
        let (host, guest) = match parts.as_slice() {
            [host] => (*host, *host),
            [host, guest] => (*host, *guest),
            _ => return Err(format!("invalid --dir `{spec}` (expected HOST[:GUEST][:ro])")),
        };
        if host.is_empty() || guest.is_empty() {
            return Err(format!("invalid --dir `{spec}`: empty path (expected HOST[:GUEST][:ro])"));
        }
        if guest.contains('\0') || host.contains('\0') {
            return Err(format!("invalid --dir `{spec}`: NUL in path"));
        }
        Ok(Preopen { host: PathBuf::from(host), guest: guest.to_string(), read_only })
    }
}

/// What the guest's stdin is connected to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Stdin {
    /// The caller's stdin.
    #[default]
    Inherit,
    /// An empty stream.
    Null,
    /// These bytes, then end of stream (deterministic runs read stdin up front).
    Bytes(Vec<u8>),
}

/// Where the guest's stdout and stderr go.
#[derive(Clone, Default)]
pub enum Output {
    /// The caller's stdout and stderr.
    #[default]
    Inherit,
    /// Both streams into one sink (a detached container's log).
    Sink(Arc<dyn GuestOutput>),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Output::Inherit => "Inherit",
            Output::Sink(_) => "Sink",
        })
    }
}

/// The grants of one container. See the module docs for the defaults.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    pub preopens: Vec<Preopen>,
    /// Exactly the guest's environment, in order.
    pub env: Vec<(String, String)>,
    /// The guest's arguments, starting with the program name (argv[0]).
    pub args: Vec<String>,
    pub net: NetPolicy,
    pub stdin: Stdin,
    pub output: Output,
    /// `--deterministic`: fixed clocks and seeded random data instead of the host's.
    pub deterministic: Option<crate::determinism::Determinism>,
    /// WASI-NN: models by name, and whether guest-supplied models are allowed. Default: none.
    pub nn: crate::nn::NnGrants,
    /// A composed component's record of its plugged dependencies and their grants (`deps`);
    /// `None`: every dependency gets nothing.
    pub deps: Option<crate::deps::Record>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_specs() {
        let p = Preopen::parse("/data").unwrap();
        assert_eq!((p.host.to_str().unwrap(), p.guest.as_str(), p.read_only), ("/data", "/data", false));
        let p = Preopen::parse("./in:/input:ro").unwrap();
        assert_eq!((p.host.to_str().unwrap(), p.guest.as_str(), p.read_only), ("./in", "/input", true));
        let p = Preopen::parse("/a:ro").unwrap();
        assert_eq!((p.guest.as_str(), p.read_only), ("/a", true));
        assert!(Preopen::parse("").is_err());
        assert!(Preopen::parse("a:b:c:d").is_err());
        assert!(Preopen::parse(":/x").is_err());
    }
}
