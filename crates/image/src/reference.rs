//! `parse_reference`: a user's image reference, parsed by hand with docker's grammar and
//! normalization (`name` → `docker.io/library/name:latest`).
//!
//! oci-spec's own parser compiles a large Unicode regex on first use, which cost every
//! `wasmbox run IMAGE` about 35 ms of a 44 ms start (docs/benchmarks.md). The grammar is small;
//! the test below checks this parser against oci-spec's on valid and invalid references.

use oci_spec::distribution::Reference;

const DOCKER_HUB: &str = "docker.io";
const MAX_NAME: usize = 255;

/// Parses `s`; the error says what is wrong (the caller names the reference).
pub fn parse(s: &str) -> Result<Reference, &'static str> {
    if s.is_empty() {
        return Err("repository name must have at least one component");
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if !valid_name(name) || tag.is_some_and(|t| !valid_tag(t)) || digest.is_some_and(|d| !valid_digest_syntax(d)) {
        return Err("invalid reference format");
    }
    let (registry, repository) = split_domain(name);
    if repository.len() > MAX_NAME {
        return Err("repository name must not be more than 255 characters");
    }
    if let Some(d) = digest {
        let (algorithm, hex) = d.split_once(':').ok_or("invalid checksum digest format")?;
        let want = match algorithm {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => return Err("unsupported digest algorithm"),
        };
        if hex.len() != want {
            return Err("invalid checksum digest length");
        }
    }
    Ok(match (tag, digest) {
        (Some(t), Some(d)) => Reference::with_tag_and_digest(registry, repository, t.into(), d.into()),
        (None, Some(d)) => Reference::with_digest(registry, repository, d.into()),
        (t, None) => Reference::with_tag(registry, repository, t.unwrap_or("latest").into()),
    })
}

/// `[domain/]component(/component)*`: a first part with a dot, a port or uppercase letters
/// can only be a domain; path components are lowercase.
fn valid_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    let path = if parts.len() > 1 && valid_domain(parts[0]) { &parts[1..] } else { &parts[..] };
    !path.is_empty() && path.iter().all(|c| valid_component(c))
}

/// `host(.host)*(:port)?`, each host label alphanumeric with inner hyphens.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    let label = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    host.split('.').all(label) && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or any number of `-`.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` (docker's tags are ASCII).
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

/// `algorithm:hex` with at least 32 hex digits (lengths are checked per algorithm after).
fn valid_digest_syntax(d: &str) -> bool {
    let Some((algorithm, hex)) = d.split_once(':') else { return false };
    let algo_ok = algorithm.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|x| x.is_ascii_alphanumeric())
    });
    algo_ok && hex.len() >= 32 && hex.bytes().all(|x| x.is_ascii_hexdigit())
}

/// docker's normalization: a first part without `.`/`:` that is not `localhost` is a path on
/// Docker Hub, whose one-part names live under `library/`.
fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut rest) = match name.split_once('/') {
        Some((left, right)) if left.contains(['.', ':']) || left == "localhost" => {
            (left.to_string(), right.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    if domain == "index.docker.io" {
        domain = DOCKER_HUB.to_string();
    }
    if domain == DOCKER_HUB && !rest.contains('/') {
        rest = format!("library/{rest}");
    }
    (domain, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_oci_spec() {
        let hex64 = "a".repeat(64);
        let cases = [
            "busybox".to_string(),
            "busybox:1.36".into(),
            "library/busybox".into(),
            "docker.io/library/busybox:latest".into(),
            "index.docker.io/team/app:v1".into(),
            "localhost/app".into(),
            "localhost:5000/team/app:1".into(),
            "127.0.0.1:5077/demo/hello:1".into(),
            "[::1]:5000/app".into(),
            "reg.example.com/a/b/c:tag_1.2-x".into(),
            "reg.example.com:443/a__b/c-d/e.f:x".into(),
            "test.com:tag".into(),
            "test.com:5000".into(),
            "foo_bar.com:8080".into(),
            "lowercase:Uppercase".into(),
            "Uppercase:tag".into(),
            "REG.example.com/app".into(),
            "reg.example.com/App".into(),
            format!("app@sha256:{hex64}"),
            format!("app:1@sha256:{hex64}"),
            format!("reg:5000/app@sha256:{hex64}"),
            "app@sha256:abc".into(),
            format!("app@md5:{hex64}"),
            format!("app@sha512:{hex64}"),
            "app@sha256".into(),
            "".into(),
            ":tag".into(),
            "app:".into(),
            "app::1".into(),
            "a/".into(),
            "/a".into(),
            "a//b".into(),
            "a..b".into(),
            "a.-b".into(),
            "a---b".into(),
            "a___b".into(),
            "-a".into(),
            "a-".into(),
            "reg.example.com:/app".into(),
            "reg.-x.com/app".into(),
            format!("app:{}", "t".repeat(128)),
            format!("app:{}", "t".repeat(129)),
            format!("reg.example.com/{}", "a".repeat(256)),
            "app:.tag".into(),
            "app:-tag".into(),
            "app name".into(),
            "reg.example.com/app/".into(),
        ];
        for case in &cases {
            let ours = parse(case).ok();
            let theirs = case.parse::<Reference>().ok();
            assert_eq!(ours, theirs, "`{case}`");
        }
    }
}
