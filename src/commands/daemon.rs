//! `wasmbox daemon`: run the container daemon in the foreground (systemd runs it this way; the
//! other commands start it in the background when needed).

use clap::Args;

use crate::home::wasmbox_home;

/// Run the container daemon in the foreground (listens on $WASMBOX_HOME/wasmbox.sock)
#[derive(Args, Debug)]
pub struct DaemonArgs {}

pub fn exec(_a: DaemonArgs) -> anyhow::Result<i32> {
    let home = wasmbox_home()?;
    wasmbox_host::daemon::run(&home, |socket, recovered| {
        eprintln!(
            "wasmbox daemon: listening on {} (pid {}); recovered {} container(s), restarted {}",
            socket.display(),
            std::process::id(),
            recovered.marked_exited,
            recovered.restarted
        );
    })?;
    eprintln!("wasmbox daemon: stopped");
    Ok(0)
}
