//! Paged, sorted lists for the JSON API: the HTTP edge of `crate::query`.
//!
//! In: `?page=` (from 1), `?per_page=` (default 50, at most 500) and
//! `?sort=` (comma-separated fields from the endpoint's allow-list, `-` in
//! front for descending; see `crate::query::Sort`).
//!
//! Out: `{"data": [...], "meta": {"total", "page", "per_page"}}` and an RFC
//! 8288 `Link` header with `first`, `prev`, `next` and `last`, built from the
//! request's own path and query so that filters carry over.

use axum::http::{header, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::FieldErrors;
use crate::query::{PageRequest, DEFAULT_PER_PAGE, MAX_PAGE, MAX_PER_PAGE};

/// `?page=&per_page=`. Kept as text, so that a bad value becomes a 422
/// that names the parameter rather than a generic 400.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page number, from 1.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000000, example = 1)]
    pub page: Option<String>,
    /// Rows per page: 1 to 500, default 50.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 500, example = 50)]
    pub per_page: Option<String>,
}

impl PageParams {
    /// The page asked for; problems go into `errors`, by parameter name.
    pub fn validate(&self, errors: &mut FieldErrors) -> PageRequest {
        let page = number(
            "page",
            self.page.as_deref(),
            1,
            1..=MAX_PAGE,
            "must be a whole number from 1",
            errors,
        );
        let per_page = number(
            "per_page",
            self.per_page.as_deref(),
            DEFAULT_PER_PAGE,
            1..=MAX_PER_PAGE,
            "must be a whole number from 1 to 500",
            errors,
        );
        PageRequest { page, per_page }
    }
}

fn number(
    field: &str,
    raw: Option<&str>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    problem: &str,
    errors: &mut FieldErrors,
) -> u64 {
    match raw.map(str::trim) {
        None => default,
        Some(text) => match text.parse::<u64>() {
            Ok(n) if range.contains(&n) => n,
            _ => {
                errors.insert(field.into(), problem.into());
                default
            }
        },
    }
}

/// The body of every list answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub meta: PageMeta,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PageMeta {
    /// Rows matching the filters, on every page.
    #[schema(example = 120)]
    pub total: u64,
    #[schema(example = 1)]
    pub page: u64,
    #[schema(example = 50)]
    pub per_page: u64,
}

/// A page and its `Link` header, ready to send.
#[derive(Debug)]
pub struct Paged<T> {
    body: Page<T>,
    link: Option<HeaderValue>,
}

impl<T> Paged<T> {
    /// `uri` is the request's original URI (axum's `OriginalUri`), so that
    /// links keep the full path under nested routers.
    pub fn new(uri: &Uri, page: PageRequest, total: u64, data: Vec<T>) -> Self {
        Self {
            link: link_header(uri, page, total),
            body: Page {
                data,
                meta: PageMeta {
                    total,
                    page: page.page,
                    per_page: page.per_page,
                },
            },
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged {
            body: Page {
                data: self.body.data.into_iter().map(f).collect(),
                meta: self.body.meta,
            },
            link: self.link,
        }
    }
}

impl<T: Serialize> IntoResponse for Paged<T> {
    fn into_response(self) -> Response {
        let mut response = Json(self.body).into_response();
        if let Some(link) = self.link {
            response.headers_mut().insert(header::LINK, link);
        }
        response
    }
}

/// `Link: <...>; rel="first", ...` with path-absolute references, which
/// clients resolve against the request URL (RFC 8288, section 3.1), so
/// they stay right behind a proxy.
pub fn link_header(uri: &Uri, page: PageRequest, total: u64) -> Option<HeaderValue> {
    let last = page.last_page(total);
    let kept: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(key, _)| key != "page" && key != "per_page")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let href = |target: u64| {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&kept)
            .append_pair("page", &target.to_string())
            .append_pair("per_page", &page.per_page.to_string())
            .finish();
        format!("<{}?{query}>", uri.path())
    };
    let mut links = vec![format!("{}; rel=\"first\"", href(1))];
    if page.page > 1 {
        links.push(format!("{}; rel=\"prev\"", href((page.page - 1).min(last))));
    }
    if page.page < last {
        links.push(format!("{}; rel=\"next\"", href(page.page + 1)));
    }
    links.push(format!("{}; rel=\"last\"", href(last)));
    HeaderValue::from_str(&links.join(", ")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(page: u64, per_page: u64) -> PageRequest {
        PageRequest { page, per_page }
    }

    #[test]
    fn links_keep_filters_and_name_every_neighbour() {
        let uri: Uri = "/api/v1/tokens?role=admin&page=2&per_page=10&q=a%20b"
            .parse()
            .unwrap();
        let link = link_header(&uri, request(2, 10), 35).unwrap();
        assert_eq!(
            link.to_str().unwrap(),
            "</api/v1/tokens?role=admin&q=a+b&page=1&per_page=10>; rel=\"first\", \
             </api/v1/tokens?role=admin&q=a+b&page=1&per_page=10>; rel=\"prev\", \
             </api/v1/tokens?role=admin&q=a+b&page=3&per_page=10>; rel=\"next\", \
             </api/v1/tokens?role=admin&q=a+b&page=4&per_page=10>; rel=\"last\""
        );
    }

    #[test]
    fn the_first_and_last_pages_have_no_prev_or_next() {
        let uri: Uri = "/x".parse().unwrap();
        let only = link_header(&uri, request(1, 50), 0).unwrap();
        assert_eq!(
            only.to_str().unwrap(),
            "</x?page=1&per_page=50>; rel=\"first\", </x?page=1&per_page=50>; rel=\"last\""
        );
        let beyond = link_header(&uri, request(9, 50), 60).unwrap();
        assert!(beyond
            .to_str()
            .unwrap()
            .contains("</x?page=2&per_page=50>; rel=\"prev\""));
        assert!(!beyond.to_str().unwrap().contains("next"));
    }

    #[test]
    fn page_parameters_are_checked() {
        let cases = [
            (Some("0"), None, Some("page")),
            (Some("x"), None, Some("page")),
            (Some("-1"), None, Some("page")),
            (None, Some("501"), Some("per_page")),
            (None, Some("0"), Some("per_page")),
            (Some("2"), Some("500"), None),
            (None, None, None),
        ];
        for (page, per_page, bad) in cases {
            let params = PageParams {
                page: page.map(str::to_string),
                per_page: per_page.map(str::to_string),
            };
            let mut errors = FieldErrors::new();
            params.validate(&mut errors);
            assert_eq!(
                errors.keys().next().map(String::as_str),
                bad,
                "{page:?} {per_page:?}"
            );
        }
    }
}
