//! Who is on the other end: the client's IP address, for per-client limits and for the
//! address the auth proxy hands to Better-Auth.
//!
//! The socket's peer is the client, unless the peer is a proxy listed in `TRUSTED_PROXIES`:
//! then `X-Forwarded-For` is read from the right (the entry the nearest proxy added) and the
//! first address that is not itself a trusted proxy is the client. Headers from anyone else are
//! ignored, so a client cannot choose the address it is counted under.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trusts the proxies in `nets` (single addresses are /32 or /128 ranges).
    pub(crate) fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    /// Whether `ip` is a trusted proxy.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the socket peer (from `ConnectInfo`, which warden's server always
    /// sets), or the address a trusted proxy reports. `None` when the peer is unknown (an app
    /// embedding warden's extractors without `ConnectInfo`).
    pub fn client_ip(&self, parts: &Parts) -> Option<IpAddr> {
        let ConnectInfo(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
        Some(self.resolve(peer.ip(), &parts.headers))
    }

    /// The client behind `peer`, given the request's headers.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        // Every X-Forwarded-For header, in order, as one list; read from its end.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                // Garbage from beyond the trusted chain: stop at the last address we trust.
                break;
            };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port or in brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a dual-stack socket reports) as IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.resolve(ip("203.0.113.9"), &headers(&["1.2.3.4"])),
            ip("203.0.113.9")
        );
        assert_eq!(none.resolve(ip("::ffff:10.1.2.3"), &headers(&[])), ip("10.1.2.3"));
    }

    #[test]
    fn trusted_proxies_name_the_client_from_the_right() {
        let trusted = TrustedProxies::new(vec![
            "10.0.0.0/8".parse().unwrap(),
            "192.0.2.1/32".parse().unwrap(),
        ]);
        let peer = ip("10.0.0.2");
        // The client forged a first entry; the proxy appended the real address.
        assert_eq!(
            trusted.resolve(peer, &headers(&["6.6.6.6, 198.51.100.7"])),
            ip("198.51.100.7")
        );
        // Two trusted hops, over two headers.
        assert_eq!(
            trusted.resolve(peer, &headers(&["198.51.100.7, 192.0.2.1", "10.9.9.9"])),
            ip("198.51.100.7")
        );
        // No header: the proxy itself.
        assert_eq!(trusted.resolve(peer, &headers(&[])), peer);
        // Garbage beyond the trusted chain stops the walk at the last trusted hop.
        assert_eq!(
            trusted.resolve(peer, &headers(&["junk, 10.3.3.3"])),
            ip("10.3.3.3")
        );
        // Ports and brackets.
        assert_eq!(
            trusted.resolve(peer, &headers(&["[2001:db8::1]:443"])),
            ip("2001:db8::1")
        );
    }
}
