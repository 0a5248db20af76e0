//! `NetPolicy`: the `--net-allow` list. Sockets may connect only to addresses it allows, bind
//! and listen only on addresses a `listen=` rule allows, and only its host names may be looked
//! up. Empty means no network at all.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Which hosts one rule allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetTarget {
    Host(String),
    Ip(IpAddr),
    Cidr(IpAddr, u8),
}

/// One `--net-allow` entry: `HOST:PORT`, `IP[:PORT]`, `CIDR[:PORT]` (IPv6 in brackets with a
/// port) to connect to; the same prefixed with `listen=` to bind and listen on (and accept
/// connections from any peer there). A connect rule never allows listening: a guest must not
/// squat on a port it was only meant to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRule {
    pub target: NetTarget,
    /// `None` allows every port.
    pub port: Option<u16>,
    /// `listen=`: bind/listen on the address instead of connecting to it.
    pub listen: bool,
}

/// The prefix of a rule that allows binding and listening.
pub const LISTEN_PREFIX: &str = "listen=";

impl std::str::FromStr for NetRule {
    type Err = String;

    fn from_str(full: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "invalid --net-allow `{full}`: {why} (expected HOST:PORT, IP[:PORT] or CIDR[:PORT], or listen=IP:PORT to listen)"
            )
        };
        let (listen, spec) = match full.strip_prefix(LISTEN_PREFIX) {
            Some(rest) => (true, rest),
            None => (false, full),
        };
        if spec.is_empty() {
            return Err(bad("empty"));
        }
        // A bare IPv6 address or prefix (no brackets) has no port.
        if let Some(target) = parse_ip_or_cidr(spec) {
            return Ok(NetRule { target, port: None, listen });
        }
        let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or_else(|| bad("missing `]`"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after `]`"))?),
            };
            (inside, port)
        } else {
            match spec.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (spec, None),
            }
        };
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad("port must be 1-65535"))?),
            None => None,
        };
        let target = match parse_ip_or_cidr(host) {
            Some(t) => t,
            None if is_host_name(host) => NetTarget::Host(host.to_ascii_lowercase()),
            None => return Err(bad("not a host name, IP address or CIDR")),
        };
        if matches!(target, NetTarget::Host(_)) && port.is_none() {
            return Err(bad("a host name needs a port"));
        }
        Ok(NetRule { target, port, listen })
    }
}

/// The `--net-allow` text that parses back to the same rule.
impl std::fmt::Display for NetRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match &self.target {
            NetTarget::Host(h) => h.clone(),
            NetTarget::Ip(ip) => ip.to_string(),
            NetTarget::Cidr(ip, len) => format!("{ip}/{len}"),
        };
        let v6 = matches!(self.target, NetTarget::Ip(IpAddr::V6(_)) | NetTarget::Cidr(IpAddr::V6(_), _));
        if self.listen {
            f.write_str(LISTEN_PREFIX)?;
        }
        match self.port {
            Some(p) if v6 => write!(f, "[{target}]:{p}"),
            Some(p) => write!(f, "{target}:{p}"),
            None => f.write_str(&target),
        }
    }
}

fn parse_ip_or_cidr(s: &str) -> Option<NetTarget> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(NetTarget::Ip(ip));
    }
    let (ip, len) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some(NetTarget::Cidr(ip, len))
}

pub(crate) fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
        })
}

fn in_cidr(addr: IpAddr, net: IpAddr, len: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - len as u32).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - len as u32).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The network a container may reach, with host names resolved once when the container starts.
#[derive(Debug, Clone, Default)]
pub struct NetPolicy {
    rules: Vec<NetRule>,
    /// `(ip, port, listen, rule)` for what the allowed host names resolved to at start.
    resolved: Vec<(IpAddr, Option<u16>, bool, usize)>,
}

/// What a socket wants to do with an address (wasmtime's checks, grouped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketUse {
    /// Bind a local address (explicitly, or implicitly before connect/listen).
    Bind,
    /// Listen on the socket's local address.
    Listen,
    /// Accept a connection from this peer on a listening socket.
    Accept,
    /// Connect or send to this remote address.
    Connect,
    /// Receive a datagram from this peer.
    Receive,
}

impl NetPolicy {
    /// Builds the policy and resolves its host names (an unresolvable name allows nothing).
    pub fn new(rules: Vec<NetRule>) -> Self {
        let mut resolved = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            if let NetTarget::Host(name) = &rule.target
                && let Ok(addrs) = (name.as_str(), rule.port.unwrap_or(0)).to_socket_addrs()
            {
                resolved.extend(addrs.map(|a| (a.ip().to_canonical(), rule.port, rule.listen, index)));
            }
        }
        NetPolicy { rules, resolved }
    }

    /// The policy of only the rules `keep` accepts, with their names as resolved for this one
    /// (no new lookups): a composed component's dependency's share of the app's network.
    pub fn subset(&self, keep: impl Fn(&NetRule) -> bool) -> NetPolicy {
        let mut rules = Vec::new();
        let mut index_map = vec![None; self.rules.len()];
        for (i, rule) in self.rules.iter().enumerate() {
            if keep(rule) {
                index_map[i] = Some(rules.len());
                rules.push(rule.clone());
            }
        }
        let resolved = self
            .resolved
            .iter()
            .filter_map(|&(ip, port, listen, i)| index_map[i].map(|j| (ip, port, listen, j)))
            .collect();
        NetPolicy { rules, resolved }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> &[NetRule] {
        &self.rules
    }

    fn has_listen(&self) -> bool {
        self.rules.iter().any(|r| r.listen)
    }

    /// Does a rule of the given kind (`listen` or connect) match `addr`?
    fn matches(&self, addr: SocketAddr, listen: bool) -> bool {
        let ip = addr.ip().to_canonical();
        let port_ok = |p: Option<u16>| p.is_none_or(|p| p == addr.port());
        self.rules.iter().filter(|r| r.listen == listen).any(|r| {
            port_ok(r.port)
                && match r.target {
                    NetTarget::Ip(a) => a.to_canonical() == ip,
                    NetTarget::Cidr(net, len) => in_cidr(ip, net, len),
                    NetTarget::Host(_) => false,
                }
        }) || self.resolved.iter().any(|(a, p, l, _)| *l == listen && *a == ip && port_ok(*p))
    }

    /// May a socket connect to (or send to) `addr`?
    pub fn allows_addr(&self, addr: SocketAddr) -> bool {
        self.matches(addr, false)
    }

    /// May a socket use `addr` this way? Binding the wildcard address with port 0 is the
    /// ephemeral local end every outbound connection gets (wasmtime checks it before each
    /// connect), so it is allowed whenever any network is; listening on such a socket is still
    /// checked against the `listen=` rules. Every other bind, and every listen, needs a
    /// `listen=` rule; connects and sends need a connect rule.
    pub fn allows(&self, addr: SocketAddr, usage: SocketUse) -> bool {
        match usage {
            SocketUse::Bind => {
                (!self.is_empty() && addr.ip().is_unspecified() && addr.port() == 0) || self.matches(addr, true)
            }
            SocketUse::Listen => self.matches(addr, true),
            // Only reachable on a socket that passed the listen check: any peer may connect.
            SocketUse::Accept => self.has_listen(),
            SocketUse::Connect => self.matches(addr, false),
            SocketUse::Receive => self.matches(addr, false) || self.has_listen(),
        }
    }

    /// May the guest look up `name`? IP literals need no lookup; host names must be listed.
    pub fn allows_lookup(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if name.parse::<IpAddr>().is_ok() {
            return !self.rules.is_empty();
        }
        self.rules.iter().any(|r| matches!(&r.target, NetTarget::Host(h) if *h == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_print_as_they_parse() {
        for spec in [
            "example.com:443",
            "10.0.0.1",
            "10.0.0.0/8:80",
            "::1",
            "[::1]:8080",
            "[fd00::/8]:53",
            "listen=127.0.0.1:80",
        ] {
            let rule: NetRule = spec.parse().unwrap();
            assert_eq!(rule.to_string().parse::<NetRule>().unwrap(), rule, "{spec}");
        }
    }

    fn rule(s: &str) -> NetRule {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(
            rule("example.com:443"),
            NetRule { target: NetTarget::Host("example.com".into()), port: Some(443), listen: false }
        );
        assert_eq!(
            rule("10.1.2.3"),
            NetRule { target: NetTarget::Ip("10.1.2.3".parse().unwrap()), port: None, listen: false }
        );
        assert!(rule("listen=[::1]:8080").listen);
        assert_eq!(rule("10.1.2.3:80").port, Some(80));
        assert_eq!(
            rule("10.0.0.0/8:443"),
            NetRule { target: NetTarget::Cidr("10.0.0.0".parse().unwrap(), 8), port: Some(443), listen: false }
        );
        assert_eq!(rule("::1").target, NetTarget::Ip("::1".parse().unwrap()));
        assert_eq!(rule("[::1]:8080").port, Some(8080));
        assert_eq!(rule("fd00::/8").target, NetTarget::Cidr("fd00::".parse().unwrap(), 8));
        for bad in ["", "example.com", "host:0", "host:99999", "10.0.0.0/33", "a b:80", "[::1", "-x.com:1", "listen="] {
            assert!(bad.parse::<NetRule>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn matches_addresses() {
        let p = NetPolicy::new(vec![rule("127.0.0.1:8080"), rule("10.0.0.0/8"), rule("[::1]:9")]);
        assert!(p.allows_addr("127.0.0.1:8080".parse().unwrap()));
        assert!(!p.allows_addr("127.0.0.1:8081".parse().unwrap()));
        assert!(p.allows_addr("10.200.3.4:1".parse().unwrap()));
        assert!(!p.allows_addr("11.0.0.1:1".parse().unwrap()));
        assert!(p.allows_addr("[::1]:9".parse().unwrap()));
        assert!(!p.allows_addr("169.254.169.254:80".parse().unwrap()));
        assert!(p.allows_addr("[::ffff:127.0.0.1]:8080".parse().unwrap()), "v4-mapped counts as v4");
        assert!(!NetPolicy::default().allows_addr("127.0.0.1:8080".parse().unwrap()));
    }

    #[test]
    fn ephemeral_bind_only_with_some_network() {
        use SocketUse::*;
        let p = NetPolicy::new(vec![rule("127.0.0.1:8080")]);
        assert!(p.allows("0.0.0.0:0".parse().unwrap(), Bind));
        assert!(p.allows("[::]:0".parse().unwrap(), Bind));
        assert!(!p.allows("0.0.0.0:0".parse().unwrap(), Listen), "listening on the wildcard is not implied");
        assert!(!p.allows("0.0.0.0:80".parse().unwrap(), Bind));
        assert!(!NetPolicy::default().allows("0.0.0.0:0".parse().unwrap(), Bind));
    }

    #[test]
    fn connect_rules_do_not_allow_listening() {
        use SocketUse::*;
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let connect = NetPolicy::new(vec![rule("127.0.0.1:8080")]);
        assert!(connect.allows(a, Connect));
        assert!(!connect.allows(a, Bind), "port squatting on a connect-only address");
        assert!(!connect.allows(a, Listen));
        assert!(!connect.allows("10.0.0.9:1".parse().unwrap(), Accept));
        let listen = NetPolicy::new(vec![rule("listen=127.0.0.1:8080")]);
        assert!(listen.allows(a, Bind) && listen.allows(a, Listen));
        assert!(listen.allows("10.0.0.9:1".parse().unwrap(), Accept), "any peer may connect to a listener");
        assert!(!listen.allows(a, Connect), "a listen rule is not a connect rule");
        assert!(!listen.allows("127.0.0.1:8081".parse().unwrap(), Bind));
    }

    #[test]
    fn lookups_only_for_listed_names() {
        let p = NetPolicy::new(vec![rule("localhost:8080")]);
        assert!(p.allows_lookup("localhost"));
        assert!(p.allows_lookup("LOCALHOST."));
        assert!(!p.allows_lookup("example.com"));
        assert!(p.allows_addr("127.0.0.1:8080".parse().unwrap()), "localhost resolves to loopback");
        assert!(!NetPolicy::default().allows_lookup("127.0.0.1"));
    }
}
