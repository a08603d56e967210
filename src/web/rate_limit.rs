//! Request rate limits, and who a request counts against.
//!
//! Each client has a bucket of `burst` requests, refilled at `per_second`
//! (GCRA, through the `governor` crate). A refused request gets the usual
//! error, 429 with `Retry-After`.
//!
//! **Who a client is.** Only a caller that has proved who it is gets a
//! bucket of its own: an API token counts against its own bucket only once
//! it is known to be valid (`api::auth::limit_api`). Everything else, no
//! token or a made-up one, counts against its address, so inventing a new
//! token per request buys nothing. IPv6 addresses count by their /64, which
//! is what one subscriber line gets.
//!
//! The address is the TCP peer's, or, when `TRUST_PROXY` is set, the last
//! entry of `X-Forwarded-For` (the one the proxy itself appended: earlier
//! entries come from the client and prove nothing). Requests that carry
//! neither (in-process tests) share one bucket.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::Config;
use crate::error::AppError;

/// Who a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// A valid API token, by its id.
    Token(i32),
    /// An address; IPv6 masked to its /64 ([`client_bucket`]).
    Address(IpAddr),
    /// No address is known (no socket, no trusted proxy header).
    Unknown,
}

impl ClientKey {
    /// The client's address bucket, as [`client_address`] finds it.
    pub fn of_address(
        headers: &HeaderMap,
        extensions: &axum::http::Extensions,
        trust_proxy: bool,
    ) -> Self {
        Self::of_ip(client_address(headers, extensions, trust_proxy))
    }

    pub fn of_ip(ip: Option<IpAddr>) -> Self {
        match ip {
            Some(ip) => ClientKey::Address(client_bucket(ip)),
            None => ClientKey::Unknown,
        }
    }
}

/// The address a client is counted by: IPv4 as it is, IPv6 by its /64 (a
/// subscriber gets a whole /64 or more, so its host part is free to vary).
pub fn client_bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(network))
            }
        },
    }
}

/// The client's address, as far as it can be known. See the module docs.
pub fn client_address(
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    trust_proxy: bool,
) -> Option<IpAddr> {
    if trust_proxy {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
            .next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// One limiter: a bucket per [`ClientKey`].
#[derive(Debug, Clone)]
pub struct RateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<ClientKey>>,
    pub trust_proxy: bool,
}

impl RateLimit {
    /// `burst` requests at once, then one per `period`.
    pub fn new(period: Duration, burst: u32, trust_proxy: bool) -> Option<Self> {
        let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst)?);
        Some(Self {
            limiter: Arc::new(DefaultKeyedRateLimiter::keyed(quota)),
            trust_proxy,
        })
    }

    /// The API's and /metrics' limit; None when RATE_LIMIT_PER_SECOND is 0
    /// (limiting off).
    pub fn from_config(config: &Config) -> Option<Self> {
        if config.rate_limit_per_second == 0 {
            return None;
        }
        let period = Duration::from_nanos(1_000_000_000 / u64::from(config.rate_limit_per_second));
        Self::new(period, config.rate_limit_burst, config.trust_proxy)
    }

    /// The sign-in form's limit per address; None when
    /// LOGIN_RATE_LIMIT_PER_MINUTE is 0.
    pub fn for_login(config: &Config) -> Option<Self> {
        if config.login_rate_limit_per_minute == 0 {
            return None;
        }
        let period = Duration::from_secs(60) / config.login_rate_limit_per_minute;
        Self::new(
            period,
            config.login_rate_limit_per_minute,
            config.trust_proxy,
        )
    }

    /// Takes one request from `key`'s bucket, or says how long to wait.
    pub fn check(&self, key: &ClientKey) -> Result<(), AppError> {
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AppError::TooManyRequests {
                // Never tell a client to retry at once.
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        })
    }

    /// Forgets clients whose buckets are full again; call now and then so
    /// that the table does not grow with every address ever seen.
    pub fn forget_idle_clients(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_peer_address_is_used_unless_a_proxy_is_trusted() {
        let mut ext = axum::http::Extensions::new();
        ext.insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 5000))));
        let h = headers(&[("x-forwarded-for", "203.0.113.9, 198.51.100.7")]);
        assert_eq!(
            client_address(&h, &ext, false),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            client_address(&h, &ext, true),
            Some("198.51.100.7".parse().unwrap()),
            "the entry the proxy appended, not the client's own claim"
        );
        assert_eq!(
            client_address(&headers(&[]), &axum::http::Extensions::new(), true),
            None
        );
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(
            client_bucket(a),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_bucket(a), client_bucket(b));
        assert_ne!(client_bucket(a), client_bucket(other));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(client_bucket(v4), v4);
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_bucket(mapped), v4);
    }

    #[test]
    fn a_bucket_refuses_past_its_burst_and_says_when_to_retry() {
        let limit = RateLimit::new(Duration::from_secs(10), 2, false).unwrap();
        let key = ClientKey::Address("192.0.2.1".parse().unwrap());
        assert!(limit.check(&key).is_ok());
        assert!(limit.check(&key).is_ok());
        match limit.check(&key) {
            Err(AppError::TooManyRequests { retry_after_secs }) => {
                assert!((1..=10).contains(&retry_after_secs), "{retry_after_secs}")
            }
            other => panic!("{other:?}"),
        }
        let other = ClientKey::Address("192.0.2.2".parse().unwrap());
        assert!(
            limit.check(&other).is_ok(),
            "another client has its own bucket"
        );
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer ")])),
            None
        );
    }
}
