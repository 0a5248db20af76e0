//! The edge build of wasmbox for another CPU, run under Debian's qemu-user (scripts/test.sh
//! builds the binaries with scripts/edge-build.sh and installs qemu and the cross toolchains).

use std::path::PathBuf;
use std::process::Command;

use super::{Home, Out};

/// An emulated device: an architecture, its qemu CPU model, and the edge wasmbox built for it.
pub struct Device {
    pub arch: &'static str,
    qemu: &'static str,
    sysroot: &'static str,
    cpu: Option<&'static str>,
}

pub const AARCH64: Device =
    Device { arch: "aarch64", qemu: "qemu-aarch64-static", sysroot: "/usr/aarch64-linux-gnu", cpu: None };
/// qemu's default RISC-V CPU: RV64GC without the vector extension.
pub const RISCV64: Device =
    Device { arch: "riscv64gc", qemu: "qemu-riscv64-static", sysroot: "/usr/riscv64-linux-gnu", cpu: None };
/// A RISC-V CPU with V (VLEN 128): what Wasm SIMD compiled for riscv64 needs.
pub const RISCV64_V: Device = Device { cpu: Some("rv64,v=true,vlen=128"), ..RISCV64 };

impl Device {
    /// The edge wasmbox for this CPU: the `edge-test` build scripts/test.sh makes (the same
    /// code without the size tuning), or else a device's `edge` build.
    pub fn binary(&self) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("target/{}-unknown-linux-gnu", self.arch));
        let path = ["edge-test", "edge"].iter().map(|profile| dir.join(profile).join("wasmbox")).find(|p| p.is_file());
        path.unwrap_or_else(|| {
            panic!(
                "no edge wasmbox in {}: build it with `WASMBOX_EDGE_PROFILE=edge-test scripts/edge-build.sh {}` \
                 (scripts/test.sh does)",
                dir.display(),
                self.arch
            )
        })
    }

    /// The edge wasmbox of this device with `home`'s environment (see `Home::cmd`).
    pub fn cmd(&self, home: &Home) -> Command {
        let c = home.cmd();
        let mut qemu = Command::new(self.qemu);
        qemu.arg("-L").arg(self.sysroot);
        if let Some(cpu) = self.cpu {
            qemu.args(["-cpu", cpu]);
        }
        qemu.arg(self.binary());
        // Same environment and stdin as `home.cmd()`, another program.
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => qemu.env(k, v),
                None => qemu.env_remove(k),
            };
        }
        qemu.stdin(std::process::Stdio::null());
        qemu
    }

    pub fn run(&self, home: &Home, args: &[&str]) -> Out {
        Out::from(self.cmd(home).args(args).output().unwrap())
    }
}
