//! Request rate limits for /api/v1 and /metrics, and the client address.
//!
//! Each client has a bucket of `RATE_LIMIT_BURST` requests, refilled at
//! `RATE_LIMIT_PER_SECOND` (GCRA, through the `governor` crate behind
//! `tower_governor`). A client is the API token it presents (keyed by the
//! token's SHA-256, never the token itself), else its address. A refused
//! request gets the usual JSON error, 429 with `Retry-After`.
//!
//! The address is the TCP peer's, or, when `TRUST_PROXY` is set, the last
//! entry of `X-Forwarded-For` (the one the proxy itself appended: earlier
//! entries come from the client and prove nothing). Requests that carry
//! neither (in-process tests) share one bucket.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Request, Response};
use axum::response::IntoResponse;
use governor::middleware::NoOpMiddleware;
use sha2::{Digest, Sha256};
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};

use crate::config::Config;
use crate::error::AppError;

/// Who a request counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// SHA-256 of the bearer token.
    Token([u8; 32]),
    Address(IpAddr),
    /// No address is known (no socket, no trusted proxy header).
    Unknown,
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

#[derive(Debug, Clone)]
pub struct ClientKeyExtractor {
    trust_proxy: bool,
}

impl KeyExtractor for ClientKeyExtractor {
    type Key = ClientKey;

    fn extract<T>(&self, req: &Request<T>) -> Result<ClientKey, GovernorError> {
        if let Some(token) = bearer_token(req.headers()) {
            return Ok(ClientKey::Token(Sha256::digest(token.as_bytes()).into()));
        }
        Ok(
            match client_address(req.headers(), req.extensions(), self.trust_proxy) {
                Some(ip) => ClientKey::Address(ip),
                None => ClientKey::Unknown,
            },
        )
    }
}

/// The limiter shared by every rate-limited route of one application.
#[derive(Debug, Clone)]
pub struct RateLimit {
    config: Arc<GovernorConfig<ClientKeyExtractor, NoOpMiddleware>>,
}

impl RateLimit {
    /// None when RATE_LIMIT_PER_SECOND is 0 (limiting off).
    pub fn from_config(config: &Config) -> Option<Self> {
        if config.rate_limit_per_second == 0 {
            return None;
        }
        let period = std::time::Duration::from_nanos(
            1_000_000_000 / u64::from(config.rate_limit_per_second),
        );
        let governor = GovernorConfigBuilder::default()
            .period(period)
            .burst_size(config.rate_limit_burst)
            .key_extractor(ClientKeyExtractor {
                trust_proxy: config.trust_proxy,
            })
            .finish()?;
        Some(Self {
            config: Arc::new(governor),
        })
    }

    /// A layer that refuses requests over the limit with a JSON 429.
    pub fn layer(&self) -> GovernorLayer<ClientKeyExtractor, NoOpMiddleware, Body> {
        GovernorLayer::new(self.config.clone()).error_handler(too_many_requests)
    }

    /// Forgets clients whose buckets are full again; call now and then so
    /// that the table does not grow with every address ever seen.
    pub fn forget_idle_clients(&self) {
        let limiter = self.config.limiter();
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }
}

fn too_many_requests(error: GovernorError) -> Response<Body> {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => AppError::TooManyRequests {
            // tower_governor rounds down; never tell a client to retry at once.
            retry_after_secs: wait_time.max(1),
        }
        .into_response(),
        other => AppError::Internal(anyhow::anyhow!("rate limiter: {other}")).into_response(),
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
