//! A per-client limit on refused credentials (`AUTH_FAILURES_PER_MINUTE`), made to bound what
//! junk costs warden without refusing the valid people who share the junk's address (an
//! office, a carrier-grade NAT).
//!
//! A forged token costs warden a signature check (0.35 ms for ES512), a junk session token a
//! database query, a JWT with a made-up `kid` a JWKS fetch; the caller pays nothing. So each
//! client address may fail a limited number of times per minute. Past that, it is *throttled*
//! until its minute is over, and what it sends is sorted by what checking it would cost:
//!
//! - **bounded checks still run**: a JWT whose `kid` is already known (one signature check, no
//!   fetch), a signed session token or cookie (its HMAC is checked before any database read,
//!   and a valid HMAC proves Better-Auth issued it, so reading its session is no longer junk's
//!   cost). A valid credential is served; a refused one gets its real answer (401) and counts.
//! - **dear work is refused with 429** and `Retry-After`: a JWKS fetch for an unknown `kid`, a
//!   database read for an unsigned (unprovable) session token.
//!
//! Tokens already verified (in the token cache) cost nothing and never reach the limiter.
//! IPv6 clients are counted per /64, the block one subscriber usually holds.
//!
//! Before the address is throttled, its count is taken *before* the work
//! ([`Admission::Reserved`]) and given back when the credential turns out good
//! ([`FailureLimiter::refund`]), so concurrent requests cannot slip past the limit while their
//! checks are still running: at most `per_minute` credentials per address per minute cost
//! warden dear work and are refused (plus, once, the requests already in flight when the
//! address first failed). An address that has not failed costs one lookup and no write.
//!
//! **Overload.** Every check that does work holds a [`CheckGuard`] while it runs, so the
//! limiter knows how many are in flight. Below half of `capacity` nobody is shed. Above it,
//! an address that has failed this minute may start a check only while fewer than
//! `capacity × (1 − r/2)` are in flight, where `r = failures / (failures + per_minute)` grows
//! towards 1 with its failures: the addresses with the most failures are shed first (429), an
//! address with none never is (the server's `MAX_CONCURRENT_REQUESTS` still caps everyone).
//!
//! Memory is bounded: at most `MAX_CLIENTS` addresses are tracked; an attacker with more
//! addresses than that can only push other attackers out.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
const MAX_CLIENTS: u64 = 100_000;
/// Checks in flight at which, by default, even an address without failures is at the limit
/// (the server passes `MAX_CONCURRENT_REQUESTS`, whose default this is).
pub const DEFAULT_CHECKS_CAPACITY: usize = 1024;

#[derive(Debug)]
struct Window {
    started: Instant,
    failures: AtomicU32,
}

/// Counts refused credentials per client address, and checks in flight.
#[derive(Clone)]
pub struct FailureLimiter {
    per_minute: u32,
    windows: Option<moka::sync::Cache<u128, Arc<Window>>>,
    in_flight: Arc<AtomicUsize>,
    capacity: usize,
}

impl std::fmt::Debug for FailureLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailureLimiter")
            .field("per_minute", &self.per_minute)
            .field("capacity", &self.capacity)
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .finish()
    }
}

/// What an address may do, before a check that costs warden work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// It has not failed this minute: any check; [`record`](FailureLimiter::record) a refusal.
    Clean,
    /// It has failed, and one of its attempts was taken: any check;
    /// [`refund`](FailureLimiter::refund) the attempt when the credential is good.
    Reserved,
    /// It has no attempt left: bounded checks only (a known key's signature, an HMAC, a read
    /// the HMAC proved); [`record`](FailureLimiter::record) a refusal.
    Bounded,
}

/// A check in flight; dropping it ends the check.
#[derive(Debug)]
pub struct CheckGuard(Arc<AtomicUsize>);

impl Drop for CheckGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl FailureLimiter {
    /// `per_minute = 0` turns the limit (and shedding by failures) off; `capacity` is how many
    /// checks in flight count as full load.
    pub fn new(per_minute: u32, capacity: usize) -> Self {
        let windows = (per_minute > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(MAX_CLIENTS)
                .time_to_live(WINDOW)
                .build()
        });
        Self {
            per_minute,
            windows,
            in_flight: Arc::new(AtomicUsize::new(0)),
            capacity: capacity.max(1),
        }
    }

    fn key(ip: IpAddr) -> u128 {
        match super::client_ip::canonical(ip) {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            // The /64 prefix, tagged so it can never equal an IPv4 key.
            IpAddr::V6(v6) => (u128::from(v6) & !((1u128 << 64) - 1)) | 1,
        }
    }

    /// The start of a check for a credential from `ip` (`None`: the address is not known,
    /// which is never limited): what it may do, and the guard that counts it in flight; or
    /// `Err(retry_after)` when `ip` is shed under overload.
    pub fn admit(&self, ip: Option<IpAddr>) -> Result<(Admission, CheckGuard), Duration> {
        let admission = match ip {
            Some(ip) => self.admission(ip)?,
            None => Admission::Clean,
        };
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Ok((admission, CheckGuard(Arc::clone(&self.in_flight))))
    }

    fn admission(&self, ip: IpAddr) -> Result<Admission, Duration> {
        let Some(windows) = &self.windows else {
            return Ok(Admission::Clean);
        };
        let key = Self::key(ip);
        let Some(window) = windows.get(&key) else {
            return Ok(Admission::Clean);
        };
        if window.started.elapsed() >= WINDOW {
            // Expired but not yet evicted: a new minute, no failures.
            windows.invalidate(&key);
            return Ok(Admission::Clean);
        }
        let retry_after = || {
            WINDOW
                .saturating_sub(window.started.elapsed())
                .max(Duration::from_secs(1))
        };
        let failures = window.failures.load(Ordering::Acquire);
        if failures == 0 {
            return Ok(Admission::Clean);
        }
        if self.in_flight.load(Ordering::Acquire) >= self.shed_above(failures) {
            metrics::counter!("warden_auth_shed_total").increment(1);
            return Err(retry_after().min(Duration::from_secs(5)));
        }
        let reserved = window
            .failures
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.per_minute).then_some(n + 1)
            })
            .is_ok();
        Ok(if reserved {
            Admission::Reserved
        } else {
            Admission::Bounded
        })
    }

    /// How many checks in flight an address with `failures` may still join:
    /// `capacity × (1 − r/2)`, `r = failures / (failures + per_minute)`.
    fn shed_above(&self, failures: u32) -> usize {
        let (f, p, c) = (
            u128::from(failures),
            u128::from(self.per_minute.max(1)),
            self.capacity as u128,
        );
        let shed = c * f / (2 * (f + p));
        usize::try_from(c - shed).unwrap_or(self.capacity)
    }

    /// How long until `ip`'s minute is over (at least a second), for a 429's `Retry-After`.
    pub fn retry_after(&self, ip: IpAddr) -> Duration {
        self.windows
            .as_ref()
            .and_then(|w| w.get(&Self::key(ip)))
            .map_or(Duration::from_secs(1), |window| {
                WINDOW
                    .saturating_sub(window.started.elapsed())
                    .max(Duration::from_secs(1))
            })
    }

    /// Counts a refused credential that was admitted [`Clean`](Admission::Clean) or
    /// [`Bounded`](Admission::Bounded) (a reserved attempt is counted already).
    pub fn record(&self, ip: IpAddr) {
        let Some(windows) = &self.windows else { return };
        let key = Self::key(ip);
        let mut window = windows.get_with(key, Window::new);
        if window.started.elapsed() >= WINDOW {
            window = Window::new();
            windows.insert(key, Arc::clone(&window));
        }
        let _ = window
            .failures
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_add(1));
    }

    /// Gives back an attempt whose credential was good.
    pub fn refund(&self, ip: IpAddr) {
        let Some(windows) = &self.windows else { return };
        if let Some(window) = windows.get(&Self::key(ip)) {
            let _ = window
                .failures
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }
}

impl Window {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            failures: AtomicU32::new(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(limiter: &FailureLimiter, ip: IpAddr) -> Result<Admission, Duration> {
        limiter.admit(Some(ip)).map(|(admission, _guard)| admission)
    }

    #[test]
    fn attempts_until_the_limit_then_bounded_checks_only() {
        let limiter = FailureLimiter::new(3, 100);
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        for _ in 0..10 {
            assert_eq!(admission(&limiter, a), Ok(Admission::Clean), "no failure yet");
        }
        limiter.record(a);
        for _ in 0..10 {
            assert_eq!(admission(&limiter, a), Ok(Admission::Reserved));
            limiter.refund(a); // good credentials cost nothing
        }
        for _ in 0..2 {
            assert_eq!(admission(&limiter, a), Ok(Admission::Reserved));
        }
        // Out of attempts: bounded checks only, until the minute is over.
        assert_eq!(admission(&limiter, a), Ok(Admission::Bounded));
        let wait = limiter.retry_after(a);
        assert!(wait > Duration::from_secs(55) && wait <= WINDOW, "{wait:?}");
        assert_eq!(admission(&limiter, b), Ok(Admission::Clean), "another client");
        assert_eq!(admission(&limiter, a), Ok(Admission::Bounded));
        assert_eq!(
            limiter.admit(None).map(|(a, _)| a),
            Ok(Admission::Clean),
            "an unknown address is never limited"
        );
    }

    #[test]
    fn ipv6_is_counted_per_64_and_zero_turns_it_off() {
        let limiter = FailureLimiter::new(2, 100);
        limiter.record("2001:db8:1:2::1".parse().unwrap());
        limiter.record("2001:db8:1:2::2".parse().unwrap());
        assert_eq!(
            admission(&limiter, "2001:db8:1:2:abcd::9".parse().unwrap()),
            Ok(Admission::Bounded)
        );
        assert_eq!(
            admission(&limiter, "2001:db8:1:3::1".parse().unwrap()),
            Ok(Admission::Clean)
        );
        let off = FailureLimiter::new(0, 100);
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..100 {
            off.record(ip);
            assert_eq!(admission(&off, ip), Ok(Admission::Clean));
        }
    }

    #[test]
    fn under_overload_the_addresses_with_most_failures_are_shed_first() {
        let limiter = FailureLimiter::new(10, 100);
        let clean: IpAddr = "192.0.2.1".parse().unwrap();
        let few: IpAddr = "192.0.2.2".parse().unwrap();
        let many: IpAddr = "192.0.2.3".parse().unwrap();
        limiter.record(few);
        for _ in 0..1000 {
            limiter.record(many);
        }
        let mut guards = Vec::new();
        let mut hold = |n: usize| {
            while limiter.in_flight.load(Ordering::Acquire) < n {
                guards.push(limiter.admit(None).unwrap().1);
            }
        };
        // Below half the capacity nobody is shed, whatever their failures.
        hold(49);
        assert!(admission(&limiter, many).is_ok());
        // Past it, the worst address goes first ...
        hold(60);
        assert!(admission(&limiter, many).is_err());
        assert!(admission(&limiter, few).is_ok());
        // ... then, near full, the one with a single failure; a clean address never.
        hold(99);
        assert!(admission(&limiter, few).is_err());
        assert_eq!(admission(&limiter, clean), Ok(Admission::Clean));
        hold(500);
        assert_eq!(admission(&limiter, clean), Ok(Admission::Clean));
        // Checks that end give the room back.
        drop(guards);
        assert_eq!(limiter.in_flight.load(Ordering::Acquire), 0);
        assert!(admission(&limiter, many).is_ok());
    }
}
