//! Outbound `wasi:http` requests: denied unless an `--http-allow` rule lists the destination.
//!
//! A rule names a host (or `*`) and a port (default: the scheme's, 80 or 443; `*` for any).
//! Even an allowed host name may not lead to a loopback, link-local, unspecified or cloud
//! metadata address (169.254.169.254 and friends): those are reachable only when a rule names
//! the address itself (`127.0.0.1:8080`, `[::1]:8080`) or `localhost`. The name is resolved
//! once: the request goes only to the addresses that were checked (see `send.rs`), for HTTP
//! and HTTPS alike, so neither a mixed answer nor one that changes between check and connect
//! (rebinding) can lead it elsewhere.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::net::is_host_name;

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Name(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortMatch {
    /// 80 for http, 443 for https.
    SchemeDefault,
    Any,
    Exact(u16),
}

/// One `--http-allow` entry: `HOST[:PORT]`, `IP[:PORT]`, `[IPv6][:PORT]`, `*`; PORT may be `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRule {
    host: HostMatch,
    port: PortMatch,
}

impl std::str::FromStr for HttpRule {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("invalid --http-allow `{spec}`: {why} (expected HOST[:PORT], e.g. api.example.com:443)")
        };
        if spec.contains("://") {
            return Err(bad("give the host without a scheme"));
        }
        if let Ok(ip) = spec.parse::<IpAddr>() {
            return Ok(HttpRule { host: HostMatch::Ip(ip), port: PortMatch::SchemeDefault });
        }
        let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or_else(|| bad("missing `]`"))?;
            match after {
                "" => (inside, None),
                p => (inside, Some(p.strip_prefix(':').ok_or_else(|| bad("junk after `]`"))?)),
            }
        } else {
            match spec.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (spec, None),
            }
        };
        let port = match port {
            None => PortMatch::SchemeDefault,
            Some("*") => PortMatch::Any,
            Some(p) => PortMatch::Exact(
                p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad("port must be 1-65535 or *"))?,
            ),
        };
        let host = if host == "*" {
            HostMatch::Any
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            HostMatch::Ip(ip)
        } else if is_host_name(host) {
            HostMatch::Name(host.to_ascii_lowercase())
        } else {
            return Err(bad("not a host name or IP address"));
        };
        Ok(HttpRule { host, port })
    }
}

impl HttpRule {
    /// Whether a request to `host:port` matches this rule.
    pub(crate) fn allows(&self, host: &str, port: u16, https: bool) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        self.host_matches(&host) && self.port_matches(port, https)
    }

    fn port_matches(&self, port: u16, https: bool) -> bool {
        match self.port {
            PortMatch::Any => true,
            PortMatch::Exact(p) => p == port,
            PortMatch::SchemeDefault => port == if https { 443 } else { 80 },
        }
    }

    fn host_matches(&self, host: &str) -> bool {
        match &self.host {
            HostMatch::Any => true,
            HostMatch::Name(name) => name == host,
            HostMatch::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|h| h.to_canonical() == ip.to_canonical()),
        }
    }

    /// Whether this rule names a special address itself (so it may be reached).
    fn names_address(&self, ip: IpAddr) -> bool {
        match &self.host {
            HostMatch::Ip(listed) => listed.to_canonical() == ip.to_canonical(),
            HostMatch::Name(name) => name == "localhost" && ip.is_loopback(),
            HostMatch::Any => false,
        }
    }
}

/// Loopback, unspecified, link-local (which holds 169.254.169.254) and other cloud metadata
/// addresses: never reached through a host name or `*`.
fn is_special_address(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_unspecified()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4 == Ipv4Addr::new(100, 100, 100, 200) // Alibaba Cloud metadata
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link-local
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // AWS metadata over IPv6
        }
    }
}

/// The outbound allow-list of one server (or route).
#[derive(Debug, Clone, Default)]
pub struct HttpAllow {
    rules: Vec<HttpRule>,
}

impl HttpAllow {
    pub fn new(rules: Vec<HttpRule>) -> Self {
        HttpAllow { rules }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The addresses a request to `host:port` may connect to, or why it may not.
    pub async fn vet(&self, host: &str, port: u16, https: bool) -> Result<Vec<SocketAddr>, String> {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let matching: Vec<&HttpRule> =
            self.rules.iter().filter(|r| r.host_matches(&host) && r.port_matches(port, https)).collect();
        if matching.is_empty() {
            return Err(format!("{host}:{port} is not in --http-allow"));
        }
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| format!("cannot resolve {host}: {e}"))?
                .collect(),
        };
        keep_reachable(&matching, &host, port, addrs)
    }
}

/// Drops special addresses from a lookup's answer unless a matching rule names them; a mixed
/// answer (public and loopback) keeps only the public part.
fn keep_reachable(
    matching: &[&HttpRule],
    host: &str,
    port: u16,
    addrs: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>, String> {
    let allowed: Vec<SocketAddr> = addrs
        .iter()
        .copied()
        .filter(|a| !is_special_address(a.ip()) || matching.iter().any(|r| r.names_address(a.ip())))
        .collect();
    if allowed.is_empty() {
        let first = addrs.first().map(|a| a.ip().to_string()).unwrap_or_default();
        return Err(format!(
            "{host}:{port} resolves to {first}, a loopback, link-local or metadata address; \
             list the address itself to allow it (--http-allow {first}:{port})"
        ));
    }
    Ok(allowed)
}

/// The `wasi:http` hooks of one request: every outgoing request is vetted against the
/// allow-list first; denied ones fail with `HTTP-request-denied` (the guest decides what to
/// answer) and are logged for the operator.
pub(crate) struct OutboundHooks {
    pub allow: Arc<HttpAllow>,
}

type SendResult = wasmtime_wasi_http::Result<(hyper::Response<WasiBody>, super::send::ConnectionTask)>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let allow = self.allow.clone();
        Box::new(async move {
            let uri = request.uri();
            let https = uri.scheme() == Some(&hyper::http::uri::Scheme::HTTPS);
            let Some(host) = uri.host().map(str::to_string) else {
                return Err(HttpError::HttpRequestUriInvalid);
            };
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let addrs = match allow.vet(&host, port, https).await {
                Ok(addrs) => addrs,
                Err(why) => {
                    eprintln!("outbound request denied: {why}");
                    return Err(HttpError::HttpRequestDenied);
                }
            };
            // Connect only to the addresses just checked, for HTTP and HTTPS alike.
            super::send::send_to(request, &addrs, options).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(specs: &[&str]) -> HttpAllow {
        HttpAllow::new(specs.iter().map(|s| s.parse().unwrap()).collect())
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    #[test]
    fn rules_parse() {
        for ok in ["api.example.com", "api.example.com:8443", "*", "*:*", "10.0.0.1:80", "[::1]:8080", "::1", "x.y:*"] {
            assert!(ok.parse::<HttpRule>().is_ok(), "{ok}");
        }
        for bad in ["", "http://x.com", "x.com:0", "x.com:99999", "bad host", "[::1", "a..b"] {
            assert!(bad.parse::<HttpRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn special_addresses_need_to_be_listed_themselves() {
        let any = allow(&["*:*"]);
        for (host, port) in
            [("127.0.0.1", 80), ("169.254.169.254", 80), ("::1", 80), ("0.0.0.0", 80), ("::ffff:127.0.0.1", 80)]
        {
            let err = block_on(any.vet(host, port, false)).unwrap_err();
            assert!(err.contains("list the address itself"), "{host}: {err}");
        }
        assert!(block_on(any.vet("localhost", 8080, false)).is_err());
        assert!(block_on(allow(&["127.0.0.1:8080"]).vet("127.0.0.1", 8080, false)).is_ok());
        assert!(block_on(allow(&["localhost:8080"]).vet("localhost", 8080, false)).is_ok());
        assert!(block_on(allow(&["[::1]:8080"]).vet("[::1]", 8080, false)).is_ok());
        // Listed with another port, or not at all: denied before any lookup.
        assert!(block_on(allow(&["127.0.0.1:8080"]).vet("127.0.0.1", 8081, false)).unwrap_err().contains("not in"));
        assert!(block_on(allow(&["api.example.com"]).vet("api.example.com", 8443, true)).is_err());
        assert!(block_on(allow(&[]).vet("10.0.0.1", 80, false)).is_err());
        // A public address through `*` is fine (no lookup needed for a literal).
        assert!(block_on(any.vet("93.184.215.14", 443, true)).is_ok());
    }

    #[test]
    fn a_mixed_answer_keeps_only_its_public_addresses() {
        let rule: HttpRule = "*:*".parse().unwrap();
        let public: SocketAddr = "93.184.215.14:443".parse().unwrap();
        let answer = vec!["127.0.0.1:443".parse().unwrap(), public, "[::1]:443".parse().unwrap()];
        assert_eq!(keep_reachable(&[&rule], "rebind.example", 443, answer), Ok(vec![public]));
        let loopback_only = vec!["127.0.0.1:443".parse().unwrap()];
        assert!(keep_reachable(&[&rule], "rebind.example", 443, loopback_only).is_err());
    }
}
