//! SECURITY-CASES A1–A6: a guest cannot get out of its preopened directory, whatever path or
//! symlink it tries, and the host is untouched afterwards.

mod common;
use common::*;
use std::os::unix::fs::symlink;
use std::path::Path;

/// A sandbox dir and, beside it, an "outside" dir holding a secret the guest must never reach.
struct Layout {
    _root: tempfile::TempDir,
    sandbox: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn layout() -> Layout {
    let root = tempfile::tempdir().unwrap();
    let sandbox = root.path().join("sandbox");
    let outside = root.path().join("outside");
    std::fs::create_dir_all(sandbox.join("a")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "outside secret").unwrap();
    std::fs::write(sandbox.join("inside.txt"), "inside").unwrap();
    Layout { _root: root, sandbox, outside }
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let content = if meta.is_file() { std::fs::read(&p).unwrap() } else { vec![] };
        out.push((p.file_name().unwrap().to_string_lossy().into_owned(), content));
    }
    out.sort();
    out
}

#[track_caller]
fn assert_escape_fails(home: &Home, l: &Layout, probe: &str, op: &[&str]) {
    let grant = format!("{}:/sb", l.sandbox.display());
    let mut args = vec!["run", "-v", &grant, probe];
    args.extend_from_slice(op);
    let out = home.run(&args);
    out.no_panic();
    assert_ne!(out.code, 0, "{op:?} succeeded: {out:?}");
    assert!(!out.stdout.contains("outside secret"), "{op:?} leaked the secret: {out:?}");
}

#[test]
fn dot_dot_and_absolute_paths_stay_inside() {
    // A2: `../x`, `a/../../x`, `/..`, `//x`.
    let home = Home::new();
    let l = layout();
    let before = snapshot(&l.outside);
    for (_, probe) in PROBES {
        for path in ["/sb/../outside/secret", "/sb/a/../../outside/secret", "/sb/..", "/..", "//outside/secret"] {
            assert_escape_fails(&home, &l, probe, &["read", path]);
        }
        for path in ["/sb/../outside/new", "/sb/a/../../outside/new", "//outside/new", "/sb/../outside/secret"] {
            assert_escape_fails(&home, &l, probe, &["write", path, "pwned"]);
        }
        assert_escape_fails(&home, &l, probe, &["ls", "/sb/.."]);
    }
    assert_eq!(snapshot(&l.outside), before, "outside dir changed");
    // ... while ordinary paths inside still work.
    let grant = format!("{}:/sb", l.sandbox.display());
    home.run(&["run", "-v", &grant, PROBE_MODULE, "read", "/sb/a/../inside.txt"]).code(0).stdout_has("inside");
}

#[test]
fn symlinks_pointing_outside_are_not_followed() {
    // A3 (CVE-2024-38358): links to `/`, `../..` and an absolute outside path, dangling or not.
    let home = Home::new();
    let l = layout();
    symlink("/", l.sandbox.join("root")).unwrap();
    symlink("../..", l.sandbox.join("up")).unwrap();
    symlink(&l.outside, l.sandbox.join("out")).unwrap();
    symlink(l.outside.join("secret"), l.sandbox.join("secret-link")).unwrap();
    symlink(l.outside.join("created-through-link"), l.sandbox.join("dangling")).unwrap();
    let before = snapshot(&l.outside);
    for (_, probe) in PROBES {
        assert_escape_fails(&home, &l, probe, &["read", "/sb/root/etc/passwd"]);
        assert_escape_fails(&home, &l, probe, &["read", "/sb/out/secret"]);
        assert_escape_fails(&home, &l, probe, &["read", "/sb/secret-link"]);
        assert_escape_fails(&home, &l, probe, &["read", "/sb/up/outside/secret"]);
        assert_escape_fails(&home, &l, probe, &["write", "/sb/secret-link", "pwned"]);
        assert_escape_fails(&home, &l, probe, &["write", "/sb/out/new", "pwned"]);
        assert_escape_fails(&home, &l, probe, &["write", "/sb/dangling", "pwned"]);
        assert_escape_fails(&home, &l, probe, &["create", "/sb/dangling"]);
        assert_escape_fails(&home, &l, probe, &["ls", "/sb/root"]);
    }
    assert_eq!(snapshot(&l.outside), before, "outside dir changed");
    assert_eq!(std::fs::read_to_string(l.outside.join("secret")).unwrap(), "outside secret");
}

#[test]
fn trailing_slash_symlink_chain_is_denied() {
    // A4 (GHSA-vqjp-4c8c-hfgg): link1 -> "evil/", evil -> /outside.
    let home = Home::new();
    let l = layout();
    symlink("evil/", l.sandbox.join("link1")).unwrap();
    symlink(&l.outside, l.sandbox.join("evil")).unwrap();
    let before = snapshot(&l.outside);
    for (_, probe) in PROBES {
        assert_escape_fails(&home, &l, probe, &["read", "/sb/link1/secret"]);
        assert_escape_fails(&home, &l, probe, &["write", "/sb/link1/secret", "pwned"]);
        assert_escape_fails(&home, &l, probe, &["create", "/sb/link1/new"]);
        assert_escape_fails(&home, &l, probe, &["mkdir", "/sb/link1/newdir"]);
        assert_escape_fails(&home, &l, probe, &["remove", "/sb/link1/secret"]);
        assert_escape_fails(&home, &l, probe, &["ls", "/sb/link1/"]);
        assert_escape_fails(&home, &l, probe, &["rename", "/sb/inside.txt", "/sb/link1/moved"]);
    }
    assert_eq!(snapshot(&l.outside), before, "outside dir changed");
}

#[test]
fn nul_in_a_path_is_rejected() {
    // A2: "x\0/../../escape" opened with O_CREAT straight through WASI preview 1.
    let home = Home::new();
    let l = layout();
    let before = snapshot(&l.outside);
    let grant = format!("{}:/sb", l.sandbox.display());
    home.run(&["run", "-v", &grant, &wat("nul-path")]).code(3).no_panic();
    let names: Vec<_> = snapshot(&l.sandbox).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a", "inside.txt"], "sandbox gained an entry");
    assert_eq!(snapshot(&l.outside), before, "outside dir changed");
    assert!(!l.sandbox.parent().unwrap().join("escape").exists());
}
