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
//! An attempt is taken *before* dear work and given back when the credential turns out good
//! (or the request is dropped before a verdict: [`Ticket`] gives it back when it goes), so
//! concurrent requests cannot slip past the limit while their checks are still running: at
//! most `per_minute` credentials per address per minute cost warden dear work and are
//! refused, even from an address that had not failed when the burst began. An address that
//! has not failed costs one lookup and no write for a bounded check; dear work from it writes
//! its window (made once, kept for the minute).
//!
//! **Overload.** Every check that does work holds a guard while it runs, so the
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
/// Refused credentials an address may have a minute before it is throttled.
pub const DEFAULT_FAILURES_PER_MINUTE: u32 = 60;
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
    /// It has not failed this minute: bounded checks at once; dear work takes an attempt first
    /// ([`Ticket::allow_dear`]).
    Clean,
    /// It has failed, and one of its attempts is taken for this check: any check.
    Reserved,
    /// It has no attempt left: bounded checks only (a known key's signature, an HMAC, a read
    /// the HMAC proved).
    Bounded,
}

/// One credential check from one address, from [`FailureLimiter::admit`] to its verdict. It
/// counts the check in flight while it lives. An attempt it took is given back when it is
/// dropped (a good credential, warden's own outage, a request cancelled half-way), unless the
/// credential was [`refused`](Ticket::refused).
#[derive(Debug)]
pub struct Ticket<'a> {
    limiter: &'a FailureLimiter,
    ip: Option<IpAddr>,
    admission: Admission,
    /// The window an attempt was taken from (given back to that window, not to a newer one).
    reserved: Option<Arc<Window>>,
    _in_flight: CheckGuard,
}

impl Ticket<'_> {
    /// What the address may do now.
    #[cfg(test)]
    pub fn admission(&self) -> Admission {
        self.admission
    }

    /// Before dear work (a JWKS fetch, a database read nothing proved worth doing): whether it
    /// may be done. A clean address takes one of its attempts now, so a burst of concurrent
    /// junk from an address that has not failed yet gets no more dear work than its attempts.
    pub fn allow_dear(&mut self) -> bool {
        match self.admission {
            Admission::Reserved => true,
            Admission::Bounded => false,
            Admission::Clean => {
                let (Some(ip), Some(_)) = (self.ip, &self.limiter.windows) else {
                    return true;
                };
                match self.limiter.take_attempt(ip) {
                    Some(window) => {
                        self.admission = Admission::Reserved;
                        self.reserved = Some(window);
                        true
                    }
                    None => {
                        self.admission = Admission::Bounded;
                        false
                    }
                }
            }
        }
    }

    /// The credential was refused: it counts against the address (an attempt taken for it
    /// stays taken).
    pub fn refused(mut self) {
        if self.reserved.take().is_none()
            && let Some(ip) = self.ip
        {
            self.limiter.record(ip);
        }
    }

    /// How long until the address's minute is over (at least a second), for `Retry-After`.
    pub fn retry_after(&self) -> Duration {
        self.ip
            .map_or(Duration::from_secs(1), |ip| self.limiter.retry_after(ip))
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if let Some(window) = self.reserved.take() {
            let _ = window
                .failures
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }
}

/// A check in flight; dropping it ends the check.
#[derive(Debug)]
struct CheckGuard(Arc<AtomicUsize>);

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
        match crate::auth::request::client_ip::canonical(ip) {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            // The /64 prefix, tagged so it can never equal an IPv4 key.
            IpAddr::V6(v6) => (u128::from(v6) & !((1u128 << 64) - 1)) | 1,
        }
    }

    /// The start of a check for a credential from `ip` (`None`: the address is not known,
    /// which is never limited): its [`Ticket`], or `Err(retry_after)` when `ip` is shed under
    /// overload.
    pub fn admit(&self, ip: Option<IpAddr>) -> Result<Ticket<'_>, Duration> {
        let (admission, reserved) = match ip {
            Some(ip) => self.admission(ip)?,
            None => (Admission::Clean, None),
        };
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Ok(Ticket {
            limiter: self,
            ip,
            admission,
            reserved,
            _in_flight: CheckGuard(Arc::clone(&self.in_flight)),
        })
    }

    fn admission(&self, ip: IpAddr) -> Result<(Admission, Option<Arc<Window>>), Duration> {
        let Some(window) = self.current_window(ip) else {
            return Ok((Admission::Clean, None));
        };
        let failures = window.failures.load(Ordering::Acquire);
        if failures == 0 {
            return Ok((Admission::Clean, None));
        }
        if self.in_flight.load(Ordering::Acquire) >= self.shed_above(failures) {
            metrics::counter!("warden_auth_shed_total").increment(1);
            return Err(window.left().min(Duration::from_secs(5)));
        }
        Ok(match self.reserve(&window) {
            true => (Admission::Reserved, Some(window)),
            false => (Admission::Bounded, None),
        })
    }

    /// `ip`'s window for this minute, if it has one.
    fn current_window(&self, ip: IpAddr) -> Option<Arc<Window>> {
        self.windows
            .as_ref()?
            .get(&Self::key(ip))
            .filter(|w| w.started.elapsed() < WINDOW)
    }

    /// `ip`'s window for this minute, made when it has none (an expired one is replaced).
    fn window_for(&self, ip: IpAddr) -> Option<Arc<Window>> {
        let windows = self.windows.as_ref()?;
        let key = Self::key(ip);
        let window = windows.get_with(key, Window::new);
        if window.started.elapsed() < WINDOW {
            return Some(window);
        }
        let fresh = Window::new();
        windows.insert(key, Arc::clone(&fresh));
        Some(fresh)
    }

    /// One of the window's attempts, if it has one left.
    fn reserve(&self, window: &Window) -> bool {
        window
            .failures
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.per_minute).then_some(n + 1)
            })
            .is_ok()
    }

    /// An attempt for dear work from an address that had not failed: its window (made now),
    /// or `None` when concurrent checks took the last one meanwhile.
    fn take_attempt(&self, ip: IpAddr) -> Option<Arc<Window>> {
        let window = self.window_for(ip)?;
        self.reserve(&window).then_some(window)
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
        self.current_window(ip)
            .map_or(Duration::from_secs(1), |window| window.left())
    }

    /// Counts a refused credential for which no attempt was taken (past the limit the count
    /// keeps growing: it ranks the address for shedding).
    pub fn record(&self, ip: IpAddr) {
        if let Some(window) = self.window_for(ip) {
            let _ = window
                .failures
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_add(1));
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

    /// What is left of its minute, at least a second.
    fn left(&self) -> Duration {
        WINDOW
            .saturating_sub(self.started.elapsed())
            .max(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(limiter: &FailureLimiter, ip: IpAddr) -> Result<Admission, Duration> {
        limiter.admit(Some(ip)).map(|ticket| ticket.admission())
    }

    fn failures(limiter: &FailureLimiter, ip: IpAddr) -> u32 {
        limiter
            .current_window(ip)
            .map_or(0, |w| w.failures.load(Ordering::Acquire))
    }

    #[test]
    fn attempts_until_the_limit_then_bounded_checks_only() {
        let limiter = FailureLimiter::new(3, 100);
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        for _ in 0..10 {
            assert_eq!(admission(&limiter, a), Ok(Admission::Clean), "no failure yet");
        }
        limiter.admit(Some(a)).unwrap().refused();
        assert_eq!(failures(&limiter, a), 1);
        for _ in 0..10 {
            // good credentials cost nothing: the attempt is given back when the ticket goes
            assert_eq!(admission(&limiter, a), Ok(Admission::Reserved));
        }
        assert_eq!(failures(&limiter, a), 1);
        for _ in 0..2 {
            limiter.admit(Some(a)).unwrap().refused();
        }
        // Out of attempts: bounded checks only, until the minute is over.
        assert_eq!(admission(&limiter, a), Ok(Admission::Bounded));
        let wait = limiter.retry_after(a);
        assert!(wait > Duration::from_secs(55) && wait <= WINDOW, "{wait:?}");
        assert_eq!(admission(&limiter, b), Ok(Admission::Clean), "another client");
        assert_eq!(
            limiter.admit(None).map(|t| t.admission()),
            Ok(Admission::Clean),
            "an unknown address is never limited"
        );
        let mut unknown = limiter.admit(None).unwrap();
        assert!(unknown.allow_dear());
    }

    #[test]
    fn dear_work_from_a_clean_address_takes_an_attempt_first() {
        let limiter = FailureLimiter::new(3, 100);
        let a: IpAddr = "198.51.100.9".parse().unwrap();
        // A concurrent burst from an address that has not failed yet: three get dear work.
        let mut burst: Vec<Ticket<'_>> = (0..10).map(|_| limiter.admit(Some(a)).unwrap()).collect();
        let allowed = burst.iter_mut().map(Ticket::allow_dear).filter(|ok| *ok).count();
        assert_eq!(allowed, 3);
        assert_eq!(burst[9].admission(), Admission::Bounded);
        // The three were good: their attempts come back.
        drop(burst);
        assert_eq!(failures(&limiter, a), 0);
        let mut again = limiter.admit(Some(a)).unwrap();
        assert!(again.allow_dear());
        again.refused();
        assert_eq!(failures(&limiter, a), 1, "a refused one keeps its attempt");
    }

    #[test]
    fn a_cancelled_check_gives_its_attempt_back() {
        let limiter = FailureLimiter::new(2, 100);
        let a: IpAddr = "198.51.100.10".parse().unwrap();
        limiter.record(a);
        let ticket = limiter.admit(Some(a)).unwrap();
        assert_eq!(ticket.admission(), Admission::Reserved);
        assert_eq!(failures(&limiter, a), 2);
        // The request is dropped half-way (the client went away, a timeout): no verdict.
        drop(ticket);
        assert_eq!(failures(&limiter, a), 1);
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
            let mut ticket = off.admit(Some(ip)).unwrap();
            assert_eq!(ticket.admission(), Admission::Clean);
            assert!(ticket.allow_dear());
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
        let mut held = Vec::new();
        let mut hold = |n: usize| {
            while limiter.in_flight.load(Ordering::Acquire) < n {
                held.push(limiter.admit(None).unwrap());
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
        drop(held);
        assert_eq!(limiter.in_flight.load(Ordering::Acquire), 0);
        assert!(admission(&limiter, many).is_ok());
    }
}
