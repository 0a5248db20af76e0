//! Each grant of `wasmbox run` works when given and is denied when not, for modules and components.

mod common;
use common::*;

#[test]
fn files_are_invisible_without_a_grant() {
    let home = Home::new();
    let cwd = tempfile::tempdir().unwrap();
    for (_, probe) in PROBES {
        let run = |args: &[&str]| Out::from(home.cmd().current_dir(cwd.path()).arg("run").args(args).output().unwrap());
        run(&[probe, "read", "/etc/passwd"]).denied();
        run(&[probe, "create", "abc"]).denied();
        run(&[probe, "write", "/tmp/wasmbox-escape", "x"]).denied();
        run(&[probe, "ls", "."]).denied();
    }
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0, "guest created files in the cwd");
    assert!(!std::path::Path::new("/tmp/wasmbox-escape").exists());
}

#[test]
fn read_write_grant_works() {
    let home = Home::new();
    for (kind, probe) in PROBES {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("in.txt"), "host data").unwrap();
        let grant = format!("{}:/data", dir.path().display());
        home.run(&["run", "--dir", &grant, probe, "read", "/data/in.txt"]).code(0).stdout_has("host data");
        home.run(&["run", "-v", &grant, probe, "write", "/data/out.txt", "from guest"]).code(0);
        assert_eq!(std::fs::read_to_string(dir.path().join("out.txt")).unwrap(), "from guest", "{kind}");
        home.run(&["run", "-v", &grant, probe, "mkdir", "/data/sub"]).code(0);
        assert!(dir.path().join("sub").is_dir(), "{kind}");
        home.run(&["run", "-v", &grant, probe, "ls", "/data"]).code(0).stdout_has("in.txt\nout.txt\nsub");
    }
}

#[test]
fn read_only_grant_refuses_every_mutation() {
    let home = Home::new();
    for (kind, probe) in PROBES {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keep.txt");
        std::fs::write(&file, "original").unwrap();
        let grant = format!("{}:/ro:ro", dir.path().display());
        home.run(&["run", "-v", &grant, probe, "read", "/ro/keep.txt"]).code(0).stdout_has("original");
        for op in [
            vec!["write", "/ro/keep.txt", "changed"],
            vec!["append", "/ro/keep.txt", "more"],
            vec!["truncate", "/ro/keep.txt"],
            vec!["set-len", "/ro/keep.txt", "0"],
            vec!["create", "/ro/new.txt"],
            vec!["mkdir", "/ro/newdir"],
            vec!["remove", "/ro/keep.txt"],
            vec!["rename", "/ro/keep.txt", "/ro/moved.txt"],
            vec!["link", "/ro/keep.txt", "/ro/linked.txt"],
        ] {
            let mut args = vec!["run", "-v", &grant, probe];
            args.extend(op.iter().copied());
            let out = home.run(&args);
            assert_eq!(out.code, 3, "{kind} {op:?} was not refused: {out:?}");
        }
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "original", "{kind}: file changed");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["keep.txt"], "{kind}: read-only dir gained entries");
    }
}

#[test]
fn read_only_file_cannot_be_moved_or_linked_into_a_writable_grant() {
    // SECURITY-CASES A6 (GHSA-4ch3-9j33-3pmj).
    let home = Home::new();
    for (kind, probe) in PROBES {
        let ro = tempfile::tempdir().unwrap();
        let rw = tempfile::tempdir().unwrap();
        std::fs::write(ro.path().join("secret"), "ro data").unwrap();
        let ro_grant = format!("{}:/ro:ro", ro.path().display());
        let rw_grant = format!("{}:/rw", rw.path().display());
        for op in ["link", "rename"] {
            let out = home.run(&["run", "-v", &ro_grant, "-v", &rw_grant, probe, op, "/ro/secret", "/rw/secret"]);
            assert_ne!(out.code, 0, "{kind} {op} crossed grants: {out:?}");
        }
        assert!(ro.path().join("secret").exists(), "{kind}");
        assert_eq!(std::fs::read_dir(rw.path()).unwrap().count(), 0, "{kind}: rw dir gained a file");
    }
}

#[test]
fn environment_is_exactly_what_was_given() {
    let home = Home::new();
    let envfile = home.path().join("vars.env");
    std::fs::write(&envfile, "# settings\nFROM_FILE=1\nOVERRIDE=file\n").unwrap();
    for (_, probe) in PROBES {
        let out = home.run(&["run", probe, "env"]);
        out.code(0);
        assert_eq!(out.stdout, "ok\n", "guest saw host env without a grant");

        let out = Out::from(
            home.cmd()
                .env("HOST_SECRET", "s3cret")
                .env("COPIED", "from-host")
                .args(["run", "--env-file", envfile.to_str().unwrap(), "-e", "OVERRIDE=flag", "-e", "COPIED"])
                .args(["-e", "GREETING=hello world", probe, "env"])
                .output()
                .unwrap(),
        );
        out.code(0);
        assert_eq!(out.stdout, "ok\nCOPIED=from-host\nFROM_FILE=1\nGREETING=hello world\nOVERRIDE=flag\n");
    }
}

#[test]
fn args_reach_the_guest_verbatim() {
    let home = Home::new();
    for (_, probe) in PROBES {
        home.run(&["run", probe, "args", "-x", "--long", "two words"]).code(0).stdout_has("args -x --long two words");
    }
}

#[test]
fn stdin_is_connected() {
    let home = Home::new();
    for (_, probe) in PROBES {
        let mut child = home
            .cmd()
            .args(["run", probe, "stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"piped input").unwrap();
        let out = Out::from(child.wait_with_output().unwrap());
        out.code(0).stdout_has("piped input");
    }
}

#[test]
fn sockets_need_net_allow() {
    let home = Home::new();
    let port = pong_server(std::time::Duration::from_secs(30));
    let addr = format!("127.0.0.1:{port}");
    // Denied by default, and for an address not on the list.
    home.run(&["run", PROBE_COMPONENT, "connect", &addr]).denied();
    let other = format!("127.0.0.2:{port}");
    home.run(&["run", "--net-allow", &other, PROBE_COMPONENT, "connect", &addr]).denied();
    let wrong_port = format!("127.0.0.1:{}", port.wrapping_add(1).max(1));
    home.run(&["run", "--net-allow", &wrong_port, PROBE_COMPONENT, "connect", &addr]).denied();
    // Allowed by IP:PORT, by CIDR, and by host name (which also allows looking that name up).
    home.run(&["run", "--net-allow", &addr, PROBE_COMPONENT, "connect", &addr]).code(0).stdout_has("pong");
    home.run(&["run", "--net-allow", "127.0.0.0/8", PROBE_COMPONENT, "connect", &addr]).code(0).stdout_has("pong");
    let by_name = format!("localhost:{port}");
    home.run(&["run", "--net-allow", &by_name, PROBE_COMPONENT, "connect", &by_name]).code(0).stdout_has("pong");
    // A name that is not listed is not even looked up.
    home.run(&["run", "--net-allow", &addr, PROBE_COMPONENT, "connect", &by_name]).denied();
}

#[test]
fn bad_grants_are_wasmbox_errors() {
    let home = Home::new();
    home.run(&["run", "-v", "/definitely/missing:/x", PROBE_MODULE, "hello"])
        .code(125)
        .stderr_has("cannot grant --dir /definitely/missing:/x");
    home.run(&["run", "--net-allow", "example.com", PROBE_MODULE]).code(125).stderr_has("needs a port");
    home.run(&["run", "-m", "12parsecs", PROBE_MODULE]).code(125).stderr_has("invalid size unit");
    home.run(&["run", "--env-file", "/definitely/missing.env", PROBE_MODULE]).code(125).stderr_has("--env-file");
    home.run(&["run", "-e", "=oops", PROBE_MODULE]).code(125).stderr_has("invalid environment variable");
}
