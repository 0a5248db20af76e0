//! `wasmbox login`: check and store credentials for a registry.

use std::io::Read;

use anyhow::{Context, bail};
use clap::Args;
use wasmbox_image::registry::Registry;
use wasmbox_image::{auth, parse_reference};

/// Log in to a registry (the password is read from stdin)
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The registry, HOST[:PORT]
    #[arg(value_name = "REGISTRY")]
    pub registry: String,

    /// User name
    #[arg(short, long)]
    pub username: String,

    /// Read the password from stdin (the only way: it never appears in `ps` or shell history)
    #[arg(long, required = true)]
    pub password_stdin: bool,

    /// Allow plain HTTP for a registry that is not on this machine
    #[arg(long)]
    pub insecure: bool,
}

pub fn exec(a: LoginArgs) -> anyhow::Result<i32> {
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password).context("failed to read the password from stdin")?;
    let password = password.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!("empty password on stdin");
    }
    // Any repository name will do: the check is an authenticated catalog request.
    let probe = parse_reference(&format!("{}/wasmbox-login-check", a.registry))?;
    let registry = Registry::new(&probe, a.insecure, Some((a.username.clone(), password.clone())));
    super::block_on(registry.check_login(&probe))??;
    let path = super::auth_file()?;
    auth::store(&path, probe.resolve_registry(), &a.username, &password)?;
    eprintln!("login succeeded; credentials saved in {}", path.display());
    Ok(0)
}
