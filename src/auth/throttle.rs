//! A per-client limit on refused credentials (`AUTH_FAILURES_PER_MINUTE`).
//!
//! A forged token costs warden a signature check (0.35 ms for ES512), a junk session token a
//! database query; the caller pays nothing. So each client address may fail a limited number of
//! times per minute; past that, its requests that would need such work are answered 429 with
//! `Retry-After` until its minute is over. Tokens already verified (in the token cache) cost
//! nothing and are never throttled, so a user behind the same address as an attacker keeps
//! working. IPv6 clients are counted per /64, the block one subscriber usually holds.
//!
//! Once an address has failed this minute, the count is taken *before* the work
//! ([`FailureLimiter::reserve`]) and given back when the credential turns out good
//! ([`FailureLimiter::refund`]), so concurrent requests cannot slip past the limit while their
//! checks are still running: at most `per_minute` credentials per address per minute are
//! refused after costing warden anything (plus, once, the requests already in flight when the
//! address first failed). An address that has not failed costs one lookup and no write.
//!
//! Memory is bounded: at most `MAX_CLIENTS` addresses are tracked; an attacker with more
//! addresses than that can only push other attackers out.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
const MAX_CLIENTS: u64 = 100_000;

#[derive(Debug)]
struct Window {
    started: Instant,
    failures: AtomicU32,
}

/// Counts refused credentials per client address.
#[derive(Clone)]
pub struct FailureLimiter {
    per_minute: u32,
    windows: Option<moka::sync::Cache<u128, Arc<Window>>>,
}

impl std::fmt::Debug for FailureLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailureLimiter")
            .field("per_minute", &self.per_minute)
            .finish()
    }
}

impl FailureLimiter {
    /// `per_minute = 0` turns the limit off.
    pub fn new(per_minute: u32) -> Self {
        let windows = (per_minute > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(MAX_CLIENTS)
                .time_to_live(WINDOW)
                .build()
        });
        Self { per_minute, windows }
    }

    fn key(ip: IpAddr) -> u128 {
        match super::client_ip::canonical(ip) {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            // The /64 prefix, tagged so it can never equal an IPv4 key.
            IpAddr::V6(v6) => (u128::from(v6) & !((1u128 << 64) - 1)) | 1,
        }
    }

    /// Before costly work: `Ok(true)` when one of `ip`'s attempts was taken (it has failed this
    /// minute: give it back with [`refund`](Self::refund) if the credential is good),
    /// `Ok(false)` when `ip` has not failed (record a failure with [`record`](Self::record)),
    /// or `Err(retry_after)` when it has no attempt left.
    pub fn reserve(&self, ip: IpAddr) -> Result<bool, Duration> {
        let Some(windows) = &self.windows else {
            return Ok(false);
        };
        let key = Self::key(ip);
        let Some(mut window) = windows.get(&key) else {
            return Ok(false);
        };
        if window.started.elapsed() >= WINDOW {
            // Expired but not yet evicted: start a new window.
            window = Arc::new(Window::new_inner());
            windows.insert(key, Arc::clone(&window));
        }
        window
            .failures
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.per_minute).then_some(n + 1)
            })
            .map(|_| true)
            .map_err(|_| {
                WINDOW
                    .saturating_sub(window.started.elapsed())
                    .max(Duration::from_secs(1))
            })
    }

    /// Counts a refused credential from an address that had no failures this minute.
    pub fn record(&self, ip: IpAddr) {
        let Some(windows) = &self.windows else { return };
        let key = Self::key(ip);
        let window = windows.get_with(key, Window::new);
        if window.started.elapsed() >= WINDOW {
            windows.insert(key, Arc::new(Window::new_inner()));
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
        Arc::new(Self::new_inner())
    }

    fn new_inner() -> Self {
        Self {
            started: Instant::now(),
            failures: AtomicU32::new(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_the_limit_until_the_window_ends_and_good_credentials_are_refunded() {
        let limiter = FailureLimiter::new(3);
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        for _ in 0..10 {
            assert_eq!(limiter.reserve(a), Ok(false), "no failure yet: nothing to take");
        }
        limiter.record(a);
        for _ in 0..10 {
            assert_eq!(limiter.reserve(a), Ok(true));
            limiter.refund(a); // good credentials cost nothing
        }
        for _ in 0..2 {
            assert_eq!(limiter.reserve(a), Ok(true));
        }
        let wait = limiter.reserve(a).unwrap_err();
        assert!(wait > Duration::from_secs(55) && wait <= WINDOW, "{wait:?}");
        assert!(limiter.reserve(b).is_ok(), "another client is not affected");
    }

    #[test]
    fn ipv6_is_counted_per_64_and_zero_turns_it_off() {
        let limiter = FailureLimiter::new(2);
        limiter.record("2001:db8:1:2::1".parse().unwrap());
        assert!(limiter.reserve("2001:db8:1:2::ffff".parse().unwrap()).is_ok());
        assert!(limiter.reserve("2001:db8:1:2:abcd::9".parse().unwrap()).is_err());
        assert!(limiter.reserve("2001:db8:1:3::1".parse().unwrap()).is_ok());
        let off = FailureLimiter::new(0);
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..100 {
            assert!(off.reserve(ip).is_ok());
        }
    }
}
