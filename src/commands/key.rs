//! `wasmbox key generate`: a signing key pair in cosign's format (`cosign.key`, `cosign.pub`).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use clap::{Args, Subcommand};
use wasmbox_trust::keys::PrivateKey;

/// Manage signing keys (cosign-compatible)
#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Write a new key pair: PREFIX.key (encrypted, 0600) and PREFIX.pub
    Generate(GenerateArgs),
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Path prefix of the two files
    #[arg(long, value_name = "PREFIX", default_value = "cosign")]
    pub output_prefix: String,

    /// Read the password from the first line of stdin (else WASMBOX_PASSWORD or COSIGN_PASSWORD)
    #[arg(long)]
    pub password_stdin: bool,

    /// Replace existing files
    #[arg(short, long)]
    pub force: bool,
}

pub fn exec(a: KeyArgs) -> anyhow::Result<i32> {
    let KeyCommand::Generate(g) = a.command;
    let private = format!("{}.key", g.output_prefix);
    let public = format!("{}.pub", g.output_prefix);
    for path in [&private, &public] {
        if !g.force && std::path::Path::new(path).exists() {
            anyhow::bail!("{path} already exists (pass -f to replace it)");
        }
    }
    let password = crate::trust::password(g.password_stdin, true)?;
    let key = PrivateKey::generate();
    let sealed = key.seal(password.as_bytes())?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&private)
        .map_err(|e| anyhow::anyhow!("cannot write {private}: {e}"))?;
    file.write_all(sealed.as_bytes())?;
    std::fs::write(&public, key.public(&public).to_pem()).map_err(|e| anyhow::anyhow!("cannot write {public}: {e}"))?;
    eprintln!("Private key written to {private}");
    eprintln!("Public key written to {public}");
    Ok(0)
}

/// Opens a private key file: it must be readable by its owner only (like ssh keys).
pub fn load_private(path: &str, password_stdin: bool) -> anyhow::Result<PrivateKey> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("cannot read key {path}: {e}"))?;
    if meta.mode() & 0o077 != 0 {
        anyhow::bail!(
            "private key {path} is readable by others (mode {:o}); run `chmod 600 {path}`",
            meta.mode() & 0o777
        );
    }
    if meta.len() > wasmbox_trust::keys::MAX_KEY_FILE {
        anyhow::bail!("{path} is too large to be a key file");
    }
    let pem = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read key {path}: {e}"))?;
    let password = crate::trust::password(password_stdin, false)?;
    Ok(PrivateKey::open(&pem, password.as_bytes(), path)?)
}

/// Reads a public key file (PEM).
pub fn load_public(path: &str) -> anyhow::Result<wasmbox_trust::PublicKey> {
    let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("cannot read key {path}: {e}"))?;
    if meta.len() > wasmbox_trust::keys::MAX_KEY_FILE {
        anyhow::bail!("{path} is too large to be a key file");
    }
    let pem = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read key {path}: {e}"))?;
    Ok(wasmbox_trust::PublicKey::from_pem(&pem, path)?)
}
