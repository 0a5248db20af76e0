//! Capabilities an image's app *requests*, compared with what the user granted. Requests are
//! never granted silently: `run` prints the flags that would grant what is missing, and
//! `--grant-requested` grants the env and network requests after printing them.

use wasmbox_engine::{Capabilities, NetPolicy, NetRule};
use wasmbox_image::app::Requests;

/// The flags that would grant each request `caps` lacks (`-v` needs a host path from the user).
pub fn missing(requests: &Requests, caps: &Capabilities) -> Vec<String> {
    let mut flags = Vec::new();
    for d in &requests.dirs {
        if !caps.preopens.iter().any(|p| p.guest == d.guest) {
            flags.push(format!("-v HOST_DIR:{}{}", d.guest, if d.read_only { ":ro" } else { "" }));
        }
    }
    for name in &requests.env {
        if !caps.env.iter().any(|(k, _)| k == name) {
            flags.push(format!("-e {name}"));
        }
    }
    for spec in &requests.net {
        let granted = spec.parse::<NetRule>().is_ok_and(|rule| caps.net.rules().contains(&rule));
        if !granted {
            flags.push(format!("--net-allow {spec}"));
        }
    }
    for name in &requests.nn {
        if !caps.nn.models.contains_key(name) {
            flags.push(format!("--nn-model {name}=MODEL"));
        }
    }
    flags
}

/// Adds the env and network requests to `caps` (env copied from the host where set); returns
/// the flags it stands for. Directories are not granted: only the user can name a host path.
pub fn grant(requests: &Requests, caps: &mut Capabilities) -> Vec<String> {
    let mut granted = Vec::new();
    for name in &requests.env {
        if !caps.env.iter().any(|(k, _)| k == name)
            && let Ok(value) = std::env::var(name)
        {
            caps.env.push((name.clone(), value));
            granted.push(format!("-e {name}"));
        }
    }
    let mut rules = caps.net.rules().to_vec();
    for spec in &requests.net {
        if let Ok(rule) = spec.parse::<NetRule>()
            && !rules.contains(&rule)
        {
            rules.push(rule);
            granted.push(format!("--net-allow {spec}"));
        }
    }
    caps.net = NetPolicy::new(rules);
    granted
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmbox_image::app::RequestedDir;

    fn requests() -> Requests {
        Requests {
            dirs: vec![RequestedDir { guest: "/data".into(), read_only: true }],
            env: vec!["WASMBOX_TEST_REQUESTED".into()],
            net: vec!["127.0.0.1:9".into()],
            http: vec![],
            nn: vec!["digits".into()],
        }
    }

    #[test]
    fn missing_then_granted() {
        let mut caps = Capabilities::default();
        assert_eq!(
            missing(&requests(), &caps),
            ["-v HOST_DIR:/data:ro", "-e WASMBOX_TEST_REQUESTED", "--net-allow 127.0.0.1:9", "--nn-model digits=MODEL"]
        );
        // SAFETY: single-threaded test setup; no other code reads this variable.
        unsafe { std::env::set_var("WASMBOX_TEST_REQUESTED", "yes") };
        let granted = grant(&requests(), &mut caps);
        assert_eq!(granted, ["-e WASMBOX_TEST_REQUESTED", "--net-allow 127.0.0.1:9"]);
        assert_eq!(missing(&requests(), &caps), ["-v HOST_DIR:/data:ro", "--nn-model digits=MODEL"]);
    }
}
