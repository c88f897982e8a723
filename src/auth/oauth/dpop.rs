//! DPoP proofs (RFC 9449) as a resource server checks them.
//!
//! Why: a DPoP-bound access token is worth nothing without a fresh proof, signed by the key the
//! token is bound to (`cnf.jkt`), for this very request. A stolen token alone no longer opens
//! anything; a stolen proof opens only the one request it was made for, once, and only within
//! a short window. That holds only if every check below is made, in order, and the same proof
//! is never taken twice: [`check_proof`] does the first part, purely (no clock read, no I/O),
//! and [`ReplayCache`] the second.
//!
//! The checks follow RFC 9449 §4.3: size, one compact JWS, `typ` exactly `dpop+jwt`, an
//! accepted asymmetric `alg` (never `none`, never HMAC), no `crit`, a `jwk` that is a public
//! key only and fits that `alg` ([`VerifyingKey::from_proof_jwk`]), the signature; then the
//! claims `jti`, `htm`, `htu` (query and fragment ignored, see [`same_htu`]), `iat` within the
//! window, `ath` when an access token is presented, and last the key's RFC 7638 thumbprint
//! against the token's `cnf.jkt`. The header's `jwk` is the only key a proof is checked
//! with: it is the proof's own key, and the thumbprint is what ties it to the token.
//!
//! Two error codes (RFC 9449 §7.1): a proof that is malformed, stale, for another request,
//! replayed, or made for another token (`ath`) is `invalid_dpop_proof`; a token bound to
//! another key than the proof's ([`DpopError::KeyMismatch`]) is `invalid_token`: the proof may
//! be fine, the token does not belong to its presenter. [`DpopError::error_code`] says which.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::{Mutex, PoisonError};

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::auth::jwt::keys::{Alg, KeyError, VerifyingKey};

/// The only `typ` a DPoP proof may carry (RFC 9449 §4.2).
pub const DPOP_TYP: &str = "dpop+jwt";

/// The longest `jti` accepted, in bytes. RFC 9449 asks for at least 96 bits of randomness:
/// a UUID is 36 characters, 32 random bytes in base64url 43.
pub const MAX_JTI_LEN: usize = 128;

/// Default for [`DpopSettings::max_proof_len`]: 8 KiB, as for access tokens. A proof with an
/// RSA-4096 key and a long path in `htu` is under 3 KiB; the bound keeps junk unparsed.
pub const DEFAULT_MAX_PROOF_LEN: usize = 8 * 1024;

/// Default for [`DpopSettings::iat_window_secs`]: five minutes in the past.
pub const DEFAULT_IAT_WINDOW_SECS: u64 = 300;

/// Default for [`DpopSettings::iat_leeway_secs`]: five seconds of client clock ahead of ours.
pub const DEFAULT_IAT_LEEWAY_SECS: u64 = 5;

/// Default for [`DpopSettings::replay_cache_entries`] (see [`ReplayCache`]).
pub const DEFAULT_REPLAY_CACHE_ENTRIES: usize = 100_000;

/// How DPoP proofs are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopSettings {
    /// The algorithms a proof may be signed with (its header's `alg`); anything else, `none`
    /// and HMAC included, is refused. Default: all five warden verifies (ES256, EdDSA, RS256,
    /// PS256, ES512).
    pub algs: Vec<Alg>,
    /// How far in the past a proof's `iat` may be, in seconds. A proof is accepted while
    /// `now - iat_window_secs <= iat <= now + iat_leeway_secs`; replayed copies are refused by
    /// [`ReplayCache`] for that whole time. Default 300.
    pub iat_window_secs: u64,
    /// How far in the future a proof's `iat` may be (the client's clock ahead of ours), in
    /// seconds. Default 5.
    pub iat_leeway_secs: u64,
    /// Proofs longer than this, in bytes, are refused before any parsing. Default 8 KiB.
    pub max_proof_len: usize,
    /// How many `(jkt, jti)` pairs [`ReplayCache`] remembers. Default 100,000.
    pub replay_cache_entries: usize,
}

impl Default for DpopSettings {
    fn default() -> Self {
        Self {
            algs: vec![Alg::Es256, Alg::EdDsa, Alg::Rs256, Alg::Ps256, Alg::Es512],
            iat_window_secs: DEFAULT_IAT_WINDOW_SECS,
            iat_leeway_secs: DEFAULT_IAT_LEEWAY_SECS,
            max_proof_len: DEFAULT_MAX_PROOF_LEN,
            replay_cache_entries: DEFAULT_REPLAY_CACHE_ENTRIES,
        }
    }
}

impl DpopSettings {
    /// The JOSE names of [`Self::algs`], in order: the metadata's
    /// `dpop_signing_alg_values_supported` and the challenge's `algs`.
    pub fn alg_names(&self) -> Vec<&'static str> {
        self.algs.iter().map(|alg| alg.name()).collect()
    }
}

/// The request a proof must have been made for.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The request's method, as sent (`GET`, `POST`, ...): `htm` must equal it exactly.
    pub method: &'a str,
    /// The request's public URL as clients see it (configured, not read from headers a client
    /// controls), an absolute `http` or `https` URL. Compared with `htu` after normalisation
    /// (see [`same_htu`]); its own query and fragment, if any, are ignored too.
    pub url: &'a str,
    /// The access token presented with the proof, if any: then `ath` must be its hash
    /// ([`access_token_hash`]).
    pub access_token: Option<&'a str>,
    /// The thumbprint the token is bound to (its `cnf.jkt`), if any: then the proof's key must
    /// have exactly this RFC 7638 thumbprint.
    pub jkt: Option<&'a str>,
}

/// A proof that passed every check of [`check_proof`]. Not yet known to be its first use:
/// that is [`ReplayCache::record`]'s question.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedProof {
    /// The RFC 7638 thumbprint (SHA-256, base64url) of the proof's key.
    pub jkt: String,
    /// The proof's unique id.
    pub jti: String,
    /// When the proof was made, in seconds since the Unix epoch.
    pub iat: f64,
}

/// Why a proof was refused. The `Display` text is short, stable and free of anything the
/// client sent, so it can be the challenge's `error_description` as it is; the error code is
/// [`DpopError::error_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// Longer than [`DpopSettings::max_proof_len`]: refused before any parsing.
    #[error("the DPoP proof is too long")]
    TooLong,
    /// Not three base64url parts, or a header or payload that is not a JSON object; says which.
    #[error("the DPoP proof is not a well-formed JWT: {0}")]
    Malformed(&'static str),
    /// The header's `typ` is absent or not exactly `dpop+jwt`.
    #[error("the DPoP proof's typ is not dpop+jwt")]
    WrongType,
    /// The header's `alg` is absent or not one of [`DpopSettings::algs`] (`none` and HMAC
    /// never are).
    #[error("the DPoP proof's algorithm is not accepted")]
    AlgNotAllowed,
    /// The header has `crit`: extensions warden does not implement cannot be ignored.
    #[error("the DPoP proof's header carries critical parameters")]
    Critical,
    /// The header carries no `jwk`.
    #[error("the DPoP proof's header has no jwk")]
    NoJwk,
    /// The header's `jwk` carries private key material.
    #[error("the DPoP proof's jwk is not a public key")]
    PrivateKey,
    /// The header's `jwk` is not a key of a type, curve and size that signs with the header's
    /// `alg`, or its members are malformed.
    #[error("the DPoP proof's jwk is not a usable key for its algorithm")]
    BadKey,
    /// The signature does not verify with the header's `jwk`.
    #[error("the DPoP proof's signature is invalid")]
    BadSignature,
    /// A required claim is absent or of the wrong type (`jti` also when empty); names it.
    #[error("the DPoP proof has no valid {0} claim")]
    MissingClaim(&'static str),
    /// `jti` is longer than [`MAX_JTI_LEN`].
    #[error("the DPoP proof's jti is too long")]
    JtiTooLong,
    /// `htm` is not the request's method.
    #[error("the DPoP proof's htm does not match the request method")]
    WrongMethod,
    /// `htu` is not the request's URL.
    #[error("the DPoP proof's htu does not match the request URL")]
    WrongUrl,
    /// `iat` is further in the past than [`DpopSettings::iat_window_secs`].
    #[error("the DPoP proof is too old")]
    TooOld,
    /// `iat` is further in the future than [`DpopSettings::iat_leeway_secs`].
    #[error("the DPoP proof is issued in the future")]
    FromTheFuture,
    /// `ath` is not the hash of the access token presented with the proof.
    #[error("the DPoP proof's ath does not match the access token")]
    WrongAth,
    /// This `jti` was already used with this key within the window.
    #[error("the DPoP proof was already used")]
    Replayed,
    /// The replay cache, full, forgot proofs at least as old as this one, so it cannot tell
    /// whether this is a replay: the client should send a fresh proof (see [`ReplayCache`]).
    #[error("the DPoP proof is too old for the replay cache, send a fresh one")]
    ReplayUnprovable,
    /// The access token is bound (`cnf.jkt`) to another key than the proof's. The only
    /// variant whose error code is `invalid_token`.
    #[error("the access token is bound to another key")]
    KeyMismatch,
}

impl DpopError {
    /// The OAuth error code of the challenge (RFC 9449 §7.1): `invalid_token` when the token
    /// is bound to another key than the proof's, `invalid_dpop_proof` for everything else.
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::KeyMismatch => "invalid_token",
            _ => "invalid_dpop_proof",
        }
    }
}

/// Checks one DPoP proof (the `DPoP` header's value) against the request it came with, at
/// `now_secs` (seconds since the Unix epoch; [`crate::auth::jwt::verify::now_secs`]). Pure:
/// the caller then asks [`ReplayCache::record`] whether it is the proof's first use.
pub fn check_proof(
    proof: &str,
    expected: &Expected<'_>,
    settings: &DpopSettings,
    now_secs: f64,
) -> Result<CheckedProof, DpopError> {
    if proof.len() > settings.max_proof_len {
        return Err(DpopError::TooLong);
    }
    let mut parts = proof.splitn(4, '.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(DpopError::Malformed("expected three dot-separated parts"));
    };
    let header = json_object(
        header_b64,
        "header is not base64url",
        "header is not a JSON object",
    )?;

    if header.get("typ").and_then(Value::as_str) != Some(DPOP_TYP) {
        return Err(DpopError::WrongType);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        // Only exact JOSE names (not the curve name `Ed25519`), and only those allowed.
        .and_then(|name| Alg::from_name(name).filter(|alg| alg.name() == name))
        .filter(|alg| settings.algs.contains(alg))
        .ok_or(DpopError::AlgNotAllowed)?;
    if header.contains_key("crit") {
        return Err(DpopError::Critical);
    }
    let jwk = header.get("jwk").ok_or(DpopError::NoJwk)?;
    let key = VerifyingKey::from_proof_jwk(jwk, alg).map_err(|e| match e {
        KeyError::Private => DpopError::PrivateKey,
        _ => DpopError::BadKey,
    })?;

    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| DpopError::Malformed("signature is not base64url"))?;
    let signing_input = &proof.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    if !key.verify(signing_input, &signature) {
        return Err(DpopError::BadSignature);
    }

    let claims = json_object(
        payload_b64,
        "payload is not base64url",
        "payload is not a JSON object",
    )?;
    let text = |name: &'static str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .ok_or(DpopError::MissingClaim(name))
    };
    let jti = text("jti")?;
    if jti.is_empty() {
        return Err(DpopError::MissingClaim("jti"));
    }
    if jti.len() > MAX_JTI_LEN {
        return Err(DpopError::JtiTooLong);
    }
    if text("htm")? != expected.method {
        return Err(DpopError::WrongMethod);
    }
    if !same_htu(text("htu")?, expected.url) {
        return Err(DpopError::WrongUrl);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_f64)
        .filter(|iat| iat.is_finite())
        .ok_or(DpopError::MissingClaim("iat"))?;
    if iat < now_secs - settings.iat_window_secs as f64 {
        return Err(DpopError::TooOld);
    }
    if iat > now_secs + settings.iat_leeway_secs as f64 {
        return Err(DpopError::FromTheFuture);
    }
    if let Some(token) = expected.access_token
        && text("ath")? != access_token_hash(token)
    {
        return Err(DpopError::WrongAth);
    }
    // The key parsed, so its required members are there: a missing thumbprint cannot happen,
    // and would be a bad key if it did.
    let jkt = jwk_thumbprint(jwk).ok_or(DpopError::BadKey)?;
    if let Some(bound) = expected.jkt
        && bound != jkt
    {
        return Err(DpopError::KeyMismatch);
    }
    Ok(CheckedProof {
        jkt,
        jti: jti.to_owned(),
        iat,
    })
}

/// Decodes one base64url part into a JSON object; the two messages say what was wrong.
fn json_object(
    b64: &str,
    not_b64: &'static str,
    not_object: &'static str,
) -> Result<serde_json::Map<String, Value>, DpopError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| DpopError::Malformed(not_b64))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(DpopError::Malformed(not_object)),
    }
}

/// `ath`: the base64url (unpadded) SHA-256 of the access token's ASCII text (RFC 9449 §4.2).
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, access_token.as_bytes()))
}

/// The RFC 7638 thumbprint of a public JWK: the base64url (unpadded) SHA-256 of the JSON of
/// its required members only, in lexicographic order, without whitespace (EC: `crv`, `kty`,
/// `x`, `y`; OKP: `crv`, `kty`, `x`; RSA: `e`, `kty`, `n`). `None` for another key type or a
/// required member absent or not a string.
pub fn jwk_thumbprint(jwk: &Value) -> Option<String> {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    let required: &[&str] = match member("kty")? {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "RSA" => &["e", "kty", "n"],
        _ => return None,
    };
    let mut canonical = serde_json::Map::new();
    for name in required {
        canonical.insert((*name).to_owned(), Value::from(member(name)?));
    }
    // serde_json's map keeps keys sorted (no `preserve_order` feature here), and prints
    // without whitespace; the tests pin both with RFC 7638's own example.
    let text = Value::Object(canonical).to_string();
    Some(URL_SAFE_NO_PAD.encode(digest(&SHA256, text.as_bytes())))
}

/// Whether a proof's `htu` names the same resource as the request's URL (RFC 9449 §4.3 step
/// 9): both without query and fragment, then normalised as RFC 3986 §6.2.2 and §6.2.3 allow:
/// scheme and host to lower case, the scheme's default port (`:80`, `:443`) or an empty port
/// dropped, an empty path as `/`, percent-encodings' hex digits to upper case and encoded
/// unreserved characters decoded. Dot segments are not resolved (a client signs the URL it
/// sends, which has none). Anything but an absolute `http`/`https` URL with a host and no
/// user info matches nothing.
pub fn same_htu(htu: &str, url: &str) -> bool {
    match (normalise_url(htu), normalise_url(url)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The normalised form [`same_htu`] compares, or `None` if `url` is not one it accepts.
fn normalise_url(url: &str) -> Option<String> {
    let url = url.split(['#', '?']).next().unwrap_or_default();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.contains('@') {
        return None;
    }
    // An IPv6 literal keeps its colons inside the brackets.
    let port_at = match authority.rfind(']') {
        Some(end) => authority[end..].find(':').map(|i| end + i),
        None => authority.rfind(':'),
    };
    let (host, port) = match port_at {
        Some(i) => (&authority[..i], &authority[i + 1..]),
        None => (authority, ""),
    };
    if host.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Leading zeros are no part of the number; a port of zeros only stays `0`.
    let port = match port.trim_start_matches('0') {
        "" if !port.is_empty() => "0",
        trimmed => trimmed,
    };
    let mut out = format!("{scheme}://{}", host.to_ascii_lowercase());
    if !port.is_empty() && port != default_port {
        out.push(':');
        out.push_str(port);
    }
    if path.is_empty() {
        out.push('/');
    }
    out.push_str(&normalise_percent(path)?);
    Some(out)
}

/// Percent-encodings with upper-case hex digits; those of unreserved characters decoded.
fn normalise_percent(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        let hex = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
        match (byte, hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                let decoded = u8::try_from(high * 16 + low).ok()?;
                if decoded.is_ascii_alphanumeric() || matches!(decoded, b'-' | b'.' | b'_' | b'~') {
                    out.push(decoded);
                } else {
                    out.push(b'%');
                    out.extend(bytes[i + 1..i + 3].iter().map(u8::to_ascii_uppercase));
                }
                i += 3;
            }
            _ => {
                out.push(byte);
                i += 1;
            }
        }
    }
    // Only ASCII bytes were replaced by ASCII bytes: still UTF-8.
    String::from_utf8(out).ok()
}

/// How many independently locked parts the replay cache has: concurrent requests rarely wait
/// for one another, and a proof's entry always lives in the same part.
const SHARDS: usize = 16;

/// A proof's key in the replay cache: 128 bits of SHA-256 over its `jkt` and `jti` (finding
/// another pair with the same key, to block someone's proof, takes a second preimage).
type ProofKey = [u8; 16];

/// The proofs already taken, by `(jkt, jti)`, each until its `iat` leaves the window, so a
/// proof is never taken twice while it could still pass [`check_proof`].
///
/// Bounded: at most [`DpopSettings::replay_cache_entries`] entries, 45 to 90 bytes each
/// (under 9 MB for the default 100,000, and only as used), in 16 parts locked separately,
/// each holding a sixteenth. Entries whose `iat` left the window are dropped first.
///
/// When a part is still full, it does not refuse the new proof, nor forget an entry that
/// could still be replayed: it drops its entry with the oldest `iat`, and that `iat` becomes
/// the part's *floor*. From then on a proof with an `iat` at or below the floor is refused
/// ([`DpopError::ReplayUnprovable`]) rather than taken, since it could be a replay of a
/// forgotten one. A full cache thus never lets a replay through: it shrinks the window
/// instead, to the last `entries` proofs. Neither a flood nor real traffic beyond
/// `entries / window` proofs a second (333/s with the defaults) opens a replay; they only
/// make clients whose proofs are older than the floor (made long before they were sent, or
/// by a clock running behind) send fresh ones. A proof made just before its request, as RFC
/// 9449 expects, is refused only when a part's whole capacity was used within its second.
#[derive(Debug)]
pub struct ReplayCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    window_secs: i64,
}

/// One independently locked part of the [`ReplayCache`].
#[derive(Debug, Default)]
struct Shard {
    seen: HashSet<ProofKey>,
    /// The same entries, oldest `iat` (whole seconds) first.
    by_iat: BinaryHeap<Reverse<(i64, ProofKey)>>,
    /// The newest `iat` among entries dropped before they expired, if any.
    floor: Option<i64>,
}

/// What [`ReplayCache`] made of one proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    First,
    Replayed,
    Unprovable,
}

impl ReplayCache {
    /// An empty cache for proofs checked with `settings` (its window and entry bound).
    pub fn new(settings: &DpopSettings) -> Self {
        let per_shard = settings.replay_cache_entries.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard,
            window_secs: i64::try_from(settings.iat_window_secs).unwrap_or(i64::MAX),
        }
    }

    /// Takes a proof [`check_proof`] accepted at `now_secs`: `Ok` the first time,
    /// [`DpopError::Replayed`] for the same key and `jti` again within the window,
    /// [`DpopError::ReplayUnprovable`] when the cache had to forget proofs this old.
    pub fn record(&self, proof: &CheckedProof, now_secs: f64) -> Result<(), DpopError> {
        match self.admit(&proof.jkt, &proof.jti, proof.iat, now_secs) {
            Admission::First => Ok(()),
            Admission::Replayed => Err(DpopError::Replayed),
            Admission::Unprovable => Err(DpopError::ReplayUnprovable),
        }
    }

    /// Whether this is the first use of `jti` with the key `jkt`, for a proof made at `iat`,
    /// at `now_secs`: `true` exactly once; `false` for a replay, and for a proof the cache
    /// cannot vouch for (older than the window or than the floor). Atomic: of any number of
    /// concurrent calls for the same pair, one returns `true`. [`Self::record`] is the same
    /// question with the two refusals told apart, and what requests ask; this form is for
    /// tests and benchmarks.
    #[cfg(any(test, feature = "testing"))]
    pub fn first_use(&self, jkt: &str, jti: &str, iat: f64, now_secs: f64) -> bool {
        self.admit(jkt, jti, iat, now_secs) == Admission::First
    }

    /// How many proofs the cache remembers now (expired ones included until next pruned).
    #[cfg(any(test, feature = "testing"))]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).seen.len()).sum()
    }

    /// Whether the cache remembers no proof at all.
    #[cfg(any(test, feature = "testing"))]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn admit(&self, jkt: &str, jti: &str, iat: f64, now_secs: f64) -> Admission {
        if !iat.is_finite() || !now_secs.is_finite() {
            return Admission::Unprovable;
        }
        // Whole seconds, rounded down: an entry lives one second longer than the window
        // rather than less. `as` saturates, which is fine for timestamps this far out.
        let iat_secs = iat.floor() as i64;
        // Entries with an `iat` below this can no longer pass `check_proof`.
        let oldest_valid = (now_secs.floor() as i64)
            .saturating_sub(self.window_secs)
            .saturating_sub(1);
        if iat_secs < oldest_valid {
            return Admission::Unprovable;
        }
        let key = proof_key(jkt, jti);
        let Some(shard) = self.shards.get(usize::from(key[0]) % SHARDS) else {
            return Admission::Unprovable;
        };
        let mut shard = lock(shard);
        shard.prune(oldest_valid);
        if shard.floor.is_some_and(|floor| iat_secs <= floor) {
            return Admission::Unprovable;
        }
        if shard.seen.contains(&key) {
            return Admission::Replayed;
        }
        if shard.seen.len() >= self.per_shard {
            match shard.by_iat.peek() {
                // This proof would be the oldest entry: dropping a newer one for it would
                // raise the floor above it anyway.
                Some(Reverse((oldest, _))) if iat_secs <= *oldest => return Admission::Unprovable,
                _ => shard.evict_oldest(),
            }
        }
        shard.seen.insert(key);
        shard.by_iat.push(Reverse((iat_secs, key)));
        Admission::First
    }
}

impl Shard {
    /// Drops the entries whose `iat` is below `oldest_valid`, and a floor below it.
    fn prune(&mut self, oldest_valid: i64) {
        while let Some(Reverse((iat, key))) = self.by_iat.peek().copied()
            && iat < oldest_valid
        {
            self.by_iat.pop();
            self.seen.remove(&key);
        }
        if self.floor.is_some_and(|floor| floor < oldest_valid) {
            self.floor = None;
        }
    }

    /// Drops the entry with the oldest `iat` before it expired, raising the floor to it.
    fn evict_oldest(&mut self) {
        if let Some(Reverse((iat, key))) = self.by_iat.pop() {
            self.seen.remove(&key);
            self.floor = Some(self.floor.map_or(iat, |floor| floor.max(iat)));
        }
    }
}

/// Locks a shard. A panic while holding it (there is none to expect) leaves at worst one
/// entry in one of its two collections and not the other, which costs nothing but memory.
fn lock(shard: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

fn proof_key(jkt: &str, jti: &str) -> ProofKey {
    let mut input = Vec::with_capacity(8 + jkt.len() + jti.len());
    input.extend_from_slice(&(jkt.len() as u64).to_le_bytes());
    input.extend_from_slice(jkt.as_bytes());
    input.extend_from_slice(jti.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest(&SHA256, &input).as_ref()[..16]);
    key
}

/// Real DPoP proofs for tests, benchmarks and fuzz targets (the crate's own, and through
/// `warden::testing::auth::oauth::dpop::testing_proofs` with feature `testing`): a client key
/// of any algorithm warden verifies, its public JWK and thumbprint, and proofs signed with it.
#[cfg(any(test, feature = "testing"))]
pub mod testing_proofs {
    #![allow(
        clippy::expect_used,
        reason = "test tooling: key generation or signing failing means a broken machine"
    )]

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P521_SHA512_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
        KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair,
    };
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};

    use super::{DPOP_TYP, access_token_hash, jwk_thumbprint};
    use crate::auth::jwt::keys::Alg;

    #[derive(Debug)]
    enum Pair {
        Ed(Ed25519KeyPair),
        Ec(EcdsaKeyPair),
        Rsa(RsaKeyPair),
    }

    /// A client's DPoP key pair of one algorithm.
    #[derive(Debug)]
    pub struct DpopKey {
        alg: Alg,
        pair: Pair,
    }

    impl DpopKey {
        /// A new key pair for `alg` (RSA: 2048 bits).
        pub fn generate(alg: Alg) -> Self {
            let pair = match alg {
                Alg::EdDsa => Pair::Ed(Ed25519KeyPair::generate().expect("Ed25519 key")),
                Alg::Es256 => {
                    Pair::Ec(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key"))
                }
                Alg::Es512 => {
                    Pair::Ec(EcdsaKeyPair::generate(&ECDSA_P521_SHA512_FIXED_SIGNING).expect("P-521 key"))
                }
                Alg::Rs256 | Alg::Ps256 => {
                    Pair::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key"))
                }
            };
            Self { alg, pair }
        }

        /// A new P-256 key (ES256), what most DPoP clients use.
        pub fn generate_es256() -> Self {
            Self::generate(Alg::Es256)
        }

        /// A new Ed25519 key (EdDSA).
        pub fn generate_ed25519() -> Self {
            Self::generate(Alg::EdDsa)
        }

        /// The algorithm it signs with.
        pub fn alg(&self) -> Alg {
            self.alg
        }

        /// The public JWK, as a client puts it in a proof's header: no `kid`, no `alg`.
        pub fn jwk(&self) -> Value {
            let b = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
            match &self.pair {
                Pair::Ed(k) => json!({"kty": "OKP", "crv": "Ed25519", "x": b(k.public_key().as_ref())}),
                Pair::Ec(k) => {
                    let point = k.public_key().as_ref();
                    let n = (point.len() - 1) / 2;
                    let crv = if self.alg == Alg::Es256 { "P-256" } else { "P-521" };
                    json!({"kty": "EC", "crv": crv, "x": b(&point[1..1 + n]), "y": b(&point[1 + n..])})
                }
                Pair::Rsa(k) => {
                    let c = PublicKeyComponents::<Vec<u8>>::from(k.public_key());
                    json!({"kty": "RSA", "n": b(&c.n), "e": b(&c.e)})
                }
            }
        }

        /// The key's RFC 7638 thumbprint: what a token bound to it carries as `cnf.jkt`.
        pub fn thumbprint(&self) -> String {
            jwk_thumbprint(&self.jwk()).expect("a generated key has a thumbprint")
        }

        /// A proof's header: `typ`, `alg`, `jwk`.
        pub fn header(&self) -> Value {
            json!({"typ": DPOP_TYP, "alg": self.alg.name(), "jwk": self.jwk()})
        }

        /// A proof's claims for `method` on `url` made at `iat` with id `jti`, and `ath` when
        /// an access token is given.
        pub fn claims(method: &str, url: &str, access_token: Option<&str>, iat: i64, jti: &str) -> Value {
            let mut claims = json!({"jti": jti, "htm": method, "htu": url, "iat": iat});
            if let Some(token) = access_token {
                claims["ath"] = Value::from(access_token_hash(token));
            }
            claims
        }

        /// A valid proof for `method` on `url` made at `iat` with id `jti`, carrying `ath` for
        /// `access_token` if given.
        pub fn proof(
            &self,
            method: &str,
            url: &str,
            access_token: Option<&str>,
            iat: i64,
            jti: &str,
        ) -> String {
            self.sign(&self.header(), &Self::claims(method, url, access_token, iat, jti))
        }

        /// A compact JWS of `header` and `claims`, signed with this key whatever they say.
        pub fn sign(&self, header: &Value, claims: &Value) -> String {
            self.sign_bytes(header.to_string().as_bytes(), claims.to_string().as_bytes())
        }

        /// A compact JWS of arbitrary header and payload bytes, signed with this key.
        pub fn sign_bytes(&self, header: &[u8], payload: &[u8]) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(payload)
            );
            let signature = self.sign_raw(input.as_bytes());
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
        }

        /// The raw signature of `message` with this key's algorithm.
        pub fn sign_raw(&self, message: &[u8]) -> Vec<u8> {
            let rng = SystemRandom::new();
            match &self.pair {
                Pair::Ed(k) => k.sign(message).as_ref().to_vec(),
                Pair::Ec(k) => k.sign(&rng, message).expect("ECDSA signature").as_ref().to_vec(),
                Pair::Rsa(k) => {
                    let padding = if self.alg == Alg::Rs256 {
                        &RSA_PKCS1_SHA256
                    } else {
                        &RSA_PSS_SHA256
                    };
                    let mut signature = vec![0; k.public_modulus_len()];
                    k.sign(padding, &rng, message, &mut signature)
                        .expect("RSA signature");
                    signature
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use serde_json::json;

    use super::testing_proofs::DpopKey;
    use super::*;

    const NOW: f64 = 1_700_000_000.0;
    const URL: &str = "https://api.example.com/notes";
    const TOKEN: &str = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2ln";

    fn expected<'a>(access_token: Option<&'a str>, jkt: Option<&'a str>) -> Expected<'a> {
        Expected {
            method: "GET",
            url: URL,
            access_token,
            jkt,
        }
    }

    fn check(proof: &str, expected: &Expected<'_>) -> Result<CheckedProof, DpopError> {
        check_proof(proof, expected, &DpopSettings::default(), NOW)
    }

    #[test]
    fn thumbprints_match_rfc_7638_and_rfc_9449() {
        // RFC 7638 §3.1; its `alg` and `kid` are not part of the thumbprint.
        let rsa = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            jwk_thumbprint(&rsa).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        // The P-256 key of RFC 9449's examples (§4.1) and its `jkt` (§6.1), members in
        // another order than the canonical one.
        let ec = json!({
            "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
            "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            "kty": "EC",
            "crv": "P-256"
        });
        assert_eq!(
            jwk_thumbprint(&ec).as_deref(),
            Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
        );
        assert_eq!(jwk_thumbprint(&json!({"kty": "oct", "k": "c2VjcmV0"})), None);
        assert_eq!(
            jwk_thumbprint(&json!({"kty": "EC", "crv": "P-256", "x": "a"})),
            None
        );
        assert_eq!(
            jwk_thumbprint(&json!({"kty": "OKP", "crv": "Ed25519", "x": 1})),
            None
        );
    }

    #[test]
    fn rfc_9449_example_proof_passes() {
        // RFC 9449 §4.1's example proof, made for a token request.
        let proof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
        let expected = Expected {
            method: "POST",
            url: "https://server.example.com/token",
            access_token: None,
            jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"),
        };
        let checked = check_proof(proof, &expected, &DpopSettings::default(), 1_562_262_620.0).unwrap();
        assert_eq!(checked.jti, "-BwC3ESc6acc2lTc");
        assert_eq!(checked.iat, 1_562_262_616.0);
    }

    #[test]
    fn valid_proofs_of_every_algorithm_pass() {
        for alg in [Alg::Es256, Alg::EdDsa, Alg::Rs256, Alg::Ps256, Alg::Es512] {
            let key = DpopKey::generate(alg);
            let jkt = key.thumbprint();
            let proof = key.proof("GET", URL, Some(TOKEN), NOW as i64 - 10, "j-1");
            let checked = check(&proof, &expected(Some(TOKEN), Some(&jkt))).unwrap();
            assert_eq!(
                checked,
                CheckedProof {
                    jkt: jkt.clone(),
                    jti: "j-1".into(),
                    iat: NOW - 10.0
                },
                "{alg}"
            );
            // Without a token nor a binding to check, `ath` and the thumbprint are not asked for.
            let bare = key.proof("GET", URL, None, NOW as i64, "j-2");
            assert_eq!(check(&bare, &expected(None, None)).unwrap().jkt, jkt, "{alg}");
        }
    }

    #[test]
    fn header_checks() {
        let key = DpopKey::generate_es256();
        let claims = DpopKey::claims("GET", URL, None, NOW as i64, "j");
        let with = |change: &dyn Fn(&mut Value)| {
            let mut header = key.header();
            change(&mut header);
            check(&key.sign(&header, &claims), &expected(None, None))
        };
        assert_eq!(with(&|h| h["typ"] = json!("JWT")), Err(DpopError::WrongType));
        assert_eq!(with(&|h| h["typ"] = json!("DPOP+JWT")), Err(DpopError::WrongType));
        assert_eq!(with(&|h| h["typ"] = Value::Null), Err(DpopError::WrongType));
        for alg in ["none", "HS256", "ES384", "Ed25519", "es256"] {
            assert_eq!(
                with(&|h| h["alg"] = json!(alg)),
                Err(DpopError::AlgNotAllowed),
                "{alg}"
            );
        }
        // An algorithm warden verifies but the settings leave out.
        let only_eddsa = DpopSettings {
            algs: vec![Alg::EdDsa],
            ..DpopSettings::default()
        };
        let proof = key.proof("GET", URL, None, NOW as i64, "j");
        assert_eq!(
            check_proof(&proof, &expected(None, None), &only_eddsa, NOW),
            Err(DpopError::AlgNotAllowed)
        );
        assert_eq!(with(&|h| h["crit"] = json!(["b64"])), Err(DpopError::Critical));
        let drop_jwk = |h: &mut Value| {
            if let Some(h) = h.as_object_mut() {
                h.remove("jwk");
            }
        };
        assert_eq!(with(&drop_jwk), Err(DpopError::NoJwk));
        assert_eq!(with(&|h| h["jwk"] = json!("a key")), Err(DpopError::BadKey));
        assert_eq!(
            with(&|h| h["jwk"]["d"] = json!("c2VjcmV0")),
            Err(DpopError::PrivateKey)
        );
        // The header names EdDSA over a P-256 key; an RSA key for ES256; the JWK's own `alg`
        // naming another algorithm.
        assert_eq!(with(&|h| h["alg"] = json!("EdDSA")), Err(DpopError::BadKey));
        let rsa = DpopKey::generate(Alg::Rs256);
        assert_eq!(with(&|h| h["jwk"] = rsa.jwk()), Err(DpopError::BadKey));
        assert_eq!(
            with(&|h| h["jwk"]["alg"] = json!("ES512")),
            Err(DpopError::BadKey)
        );
        assert_eq!(with(&|h| h["jwk"]["use"] = json!("enc")), Err(DpopError::BadKey));
        // Another key's JWK with this key's signature.
        let other = DpopKey::generate_es256();
        assert_eq!(with(&|h| h["jwk"] = other.jwk()), Err(DpopError::BadSignature));
        // The `kid`, `alg` and `use` a JWK may carry are fine when they fit.
        let ok = with(&|h| {
            h["jwk"]["kid"] = json!("k");
            h["jwk"]["alg"] = json!("ES256");
            h["jwk"]["use"] = json!("sig");
        });
        assert_eq!(ok.unwrap().jkt, key.thumbprint());
    }

    #[test]
    fn structure_and_signature() {
        let key = DpopKey::generate_ed25519();
        let proof = key.proof("GET", URL, None, NOW as i64, "j");
        let parts: Vec<&str> = proof.split('.').collect();
        let e = expected(None, None);
        let long = DpopSettings {
            max_proof_len: proof.len() - 1,
            ..DpopSettings::default()
        };
        assert_eq!(check_proof(&proof, &e, &long, NOW), Err(DpopError::TooLong));
        let malformed = [
            String::new(),
            "a".into(),
            "a.b".into(),
            format!("{proof}.x"),
            format!("{}.{}", parts[0], parts[1]),
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        ];
        for bad in &malformed {
            assert!(matches!(check(bad, &e), Err(DpopError::Malformed(_))), "{bad:?}");
        }
        // The signature of another proof, and a signature from another key.
        let other_claims = key.proof("GET", URL, None, NOW as i64, "k");
        let other_sig = other_claims.rsplit('.').next().unwrap();
        let swapped = format!("{}.{}.{other_sig}", parts[0], parts[1]);
        assert_eq!(check(&swapped, &e), Err(DpopError::BadSignature));
        let stranger = DpopKey::generate_ed25519();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode(stranger.sign_raw(format!("{}.{}", parts[0], parts[1]).as_bytes()))
        );
        assert_eq!(check(&forged, &e), Err(DpopError::BadSignature));
        let unsigned = format!("{}.{}.", parts[0], parts[1]);
        assert_eq!(check(&unsigned, &e), Err(DpopError::BadSignature));
        // A signed payload that is not a JSON object.
        let array = key.sign_bytes(key.header().to_string().as_bytes(), b"[1]");
        assert_eq!(
            check(&array, &e),
            Err(DpopError::Malformed("payload is not a JSON object"))
        );
    }

    #[test]
    fn claim_checks() {
        let key = DpopKey::generate_es256();
        let jkt = key.thumbprint();
        let e = expected(Some(TOKEN), Some(&jkt));
        let with = |change: &dyn Fn(&mut Value)| {
            let mut claims = DpopKey::claims("GET", URL, Some(TOKEN), NOW as i64, "j");
            change(&mut claims);
            check(&key.sign(&key.header(), &claims), &e)
        };
        let without = |name: &'static str| {
            move |c: &mut Value| {
                if let Some(c) = c.as_object_mut() {
                    c.remove(name);
                }
            }
        };
        for name in ["jti", "htm", "htu", "iat", "ath"] {
            assert_eq!(with(&without(name)), Err(DpopError::MissingClaim(name)), "{name}");
        }
        assert_eq!(
            with(&|c| c["jti"] = json!("")),
            Err(DpopError::MissingClaim("jti"))
        );
        assert_eq!(
            with(&|c| c["jti"] = json!(7)),
            Err(DpopError::MissingClaim("jti"))
        );
        assert_eq!(
            with(&|c| c["jti"] = json!("j".repeat(MAX_JTI_LEN + 1))),
            Err(DpopError::JtiTooLong)
        );
        assert!(with(&|c| c["jti"] = json!("j".repeat(MAX_JTI_LEN))).is_ok());
        assert_eq!(
            with(&|c| c["iat"] = json!("now")),
            Err(DpopError::MissingClaim("iat"))
        );
        assert_eq!(with(&|c| c["htm"] = json!("POST")), Err(DpopError::WrongMethod));
        assert_eq!(with(&|c| c["htm"] = json!("get")), Err(DpopError::WrongMethod));
        assert_eq!(
            with(&|c| c["htu"] = json!("https://api.example.com/other")),
            Err(DpopError::WrongUrl)
        );
        assert_eq!(
            with(&|c| c["htu"] = json!("https://evil.example.com/notes")),
            Err(DpopError::WrongUrl)
        );
        // Query and fragment are no part of the comparison; case and default ports neither.
        assert!(with(&|c| c["htu"] = json!(format!("{URL}?page=2#top"))).is_ok());
        assert!(with(&|c| c["htu"] = json!("HTTPS://API.Example.COM:443/notes")).is_ok());
        // `iat`: the window in the past, the leeway in the future, both inclusive.
        let window = DEFAULT_IAT_WINDOW_SECS as i64;
        let leeway = DEFAULT_IAT_LEEWAY_SECS as i64;
        assert!(with(&|c| c["iat"] = json!(NOW as i64 - window)).is_ok());
        assert_eq!(
            with(&|c| c["iat"] = json!(NOW as i64 - window - 1)),
            Err(DpopError::TooOld)
        );
        assert!(with(&|c| c["iat"] = json!(NOW as i64 + leeway)).is_ok());
        assert_eq!(
            with(&|c| c["iat"] = json!(NOW as i64 + leeway + 1)),
            Err(DpopError::FromTheFuture)
        );
        assert_eq!(
            with(&|c| c["ath"] = json!(access_token_hash("another token"))),
            Err(DpopError::WrongAth)
        );
        // A proof made for this token, but the token is bound to another key.
        let proof = key.proof("GET", URL, Some(TOKEN), NOW as i64, "j");
        let other = DpopKey::generate_es256().thumbprint();
        let err = check(&proof, &expected(Some(TOKEN), Some(&other))).unwrap_err();
        assert_eq!(err, DpopError::KeyMismatch);
        assert_eq!(err.error_code(), "invalid_token");
        assert_eq!(DpopError::WrongAth.error_code(), "invalid_dpop_proof");
    }

    #[test]
    fn htu_normalisation() {
        let same = [
            ("https://a.test/x", "https://a.test/x"),
            ("https://a.test/x?q=1", "https://a.test/x#f"),
            ("HTTPS://A.TEST/x", "https://a.test/x"),
            ("https://a.test:443/x", "https://a.test/x"),
            ("http://a.test:80/x", "http://a.test/x"),
            ("https://a.test:/x", "https://a.test/x"),
            ("https://a.test", "https://a.test/"),
            ("https://a.test?x", "https://a.test/"),
            ("https://a.test/%7euser/a%2fb", "https://a.test/~user/a%2Fb"),
            ("https://[::1]:8443/x", "https://[::1]:8443/x"),
            ("https://[::1]:443/x", "https://[::1]/x"),
            ("https://a.test:0443/x", "https://a.test/x"),
        ];
        for (a, b) in same {
            assert!(same_htu(a, b), "{a} {b}");
        }
        let different = [
            ("https://a.test/x", "https://a.test/X"),
            ("https://a.test/x", "http://a.test/x"),
            ("https://a.test:8443/x", "https://a.test/x"),
            ("https://a.test/x", "https://a.test/x/"),
            ("https://a.test/x", "https://b.test/x"),
            ("https://a.test.evil/x", "https://a.test/x"),
            ("https://user@a.test/x", "https://user@a.test/x"),
            ("ftp://a.test/x", "ftp://a.test/x"),
            ("/x", "/x"),
            ("https:///x", "https:///x"),
            ("https://a.test:44x/x", "https://a.test:44x/x"),
            ("https://a.test:0/x", "https://a.test/x"),
        ];
        for (a, b) in different {
            assert!(!same_htu(a, b), "{a} {b}");
        }
    }

    #[test]
    fn a_proof_is_taken_once() {
        let key = DpopKey::generate_es256();
        let settings = DpopSettings::default();
        let cache = ReplayCache::new(&settings);
        let proof = key.proof("GET", URL, None, NOW as i64, "once");
        let checked = check(&proof, &expected(None, None)).unwrap();
        assert_eq!(cache.record(&checked, NOW), Ok(()));
        assert_eq!(cache.record(&checked, NOW + 1.0), Err(DpopError::Replayed));
        // The same jti with another key is another proof.
        assert!(cache.first_use("another-jkt", "once", NOW, NOW));
        // Past the window the proof is too old for the cache too; its entry is dropped, and a
        // new proof may use the same jti.
        let later = NOW + settings.iat_window_secs as f64 + 2.0;
        assert!(!cache.first_use(&checked.jkt, "once", NOW, later));
        assert!(cache.first_use(&checked.jkt, "once", later, later));
        assert!(!cache.first_use(&checked.jkt, "once", later, later));
    }

    #[test]
    fn a_full_cache_forgets_the_oldest_and_refuses_what_it_cannot_vouch_for() {
        let settings = DpopSettings {
            replay_cache_entries: SHARDS, // one entry per shard
            ..DpopSettings::default()
        };
        let cache = ReplayCache::new(&settings);
        // Find two jti that land in the same shard.
        let shard_of = |jti: &str| proof_key("k", jti)[0] as usize % SHARDS;
        let first = "a0";
        let second = (1..)
            .map(|i| format!("a{i}"))
            .find(|j| shard_of(j) == shard_of(first))
            .unwrap();
        assert!(cache.first_use("k", first, NOW - 10.0, NOW));
        // A newer proof takes the place of the older one, whose iat becomes the floor ...
        assert!(cache.first_use("k", &second, NOW - 5.0, NOW));
        // ... so the forgotten proof cannot come back, nor anything as old or older.
        assert_eq!(
            cache.record(
                &CheckedProof {
                    jkt: "k".into(),
                    jti: first.into(),
                    iat: NOW - 10.0
                },
                NOW
            ),
            Err(DpopError::ReplayUnprovable)
        );
        assert!(!cache.first_use("k", &second, NOW - 5.0, NOW));
        // A proof older than everything remembered is not taken at the price of a newer one.
        let third = (1..)
            .map(|i| format!("b{i}"))
            .find(|j| shard_of(j) == shard_of(first))
            .unwrap();
        assert!(!cache.first_use("k", &third, NOW - 7.0, NOW));
        assert!(cache.first_use("k", &third, NOW - 1.0, NOW));
    }

    #[test]
    fn one_of_many_concurrent_first_uses_wins() {
        let cache = Arc::new(ReplayCache::new(&DpopSettings::default()));
        for round in 0..20 {
            let threads = 16;
            let barrier = Arc::new(Barrier::new(threads));
            let jti = format!("race-{round}");
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let (cache, barrier, jti) = (Arc::clone(&cache), Arc::clone(&barrier), jti.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        cache.first_use("jkt", &jti, NOW, NOW)
                    })
                })
                .collect();
            let wins = handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|won| *won)
                .count();
            assert_eq!(wins, 1, "round {round}");
        }
    }

    #[test]
    fn random_bytes_and_mutated_proofs_never_panic_nor_pass() {
        let key = DpopKey::generate_es256();
        let proof = key.proof("GET", URL, None, NOW as i64, "j");
        let e = expected(None, None);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/";
        for _ in 0..20_000 {
            let len = usize::try_from(next() % 200).unwrap_or(0);
            let bytes: Vec<u8> = if next() % 2 == 0 {
                (0..len).map(|_| (next() % 256) as u8).collect()
            } else {
                (0..len)
                    .map(|_| ALPHABET[usize::try_from(next()).unwrap_or(0) % ALPHABET.len()])
                    .collect()
            };
            let text = String::from_utf8_lossy(&bytes);
            assert!(check(&text, &e).is_err(), "{text:?}");
        }
        // One character of a valid proof changed: never accepted.
        for _ in 0..2_000 {
            let mut bytes = proof.clone().into_bytes();
            let at = usize::try_from(next()).unwrap_or(0) % bytes.len();
            let replacement = ALPHABET[usize::try_from(next()).unwrap_or(0) % ALPHABET.len()];
            if bytes[at] == replacement {
                continue;
            }
            bytes[at] = replacement;
            let text = String::from_utf8(bytes).unwrap();
            assert!(check(&text, &e).is_err(), "{text}");
        }
    }
}
