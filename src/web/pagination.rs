//! Paged, sorted lists for the JSON API.
//!
//! In: `?page=` (from 1), `?per_page=` (default 50, at most 500) and
//! `?sort=` (comma-separated fields from the endpoint's allow-list, `-` in
//! front for descending; empty values sort last either way; ties are broken
//! by id, in the direction of the first field, so that pages never overlap
//! or skip rows).
//!
//! Out: `{"data": [...], "meta": {"total", "page", "per_page"}}` and an RFC
//! 8288 `Link` header with `first`, `prev`, `next` and `last`, built from the
//! request's own path and query so that filters carry over.

use axum::http::{header, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sea_orm::sea_query::{Expr, Func, LikeExpr, NullOrdering, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, Order, PaginatorTrait,
    QueryOrder, QuerySelect, Select,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::FieldErrors;

pub const DEFAULT_PER_PAGE: u64 = 50;
pub const MAX_PER_PAGE: u64 = 500;
/// Far beyond any real list; keeps `page * per_page` from overflowing.
pub const MAX_PAGE: u64 = 1_000_000;

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

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u64,
    pub per_page: u64,
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

impl PageRequest {
    pub fn offset(&self) -> u64 {
        (self.page - 1) * self.per_page
    }

    /// The number of the last page (1 when the list is empty).
    pub fn last_page(&self, total: u64) -> u64 {
        total.div_ceil(self.per_page).max(1)
    }
}

/// A sort order chosen from an endpoint's allow-list.
#[derive(Debug, Clone)]
pub struct Sort<C> {
    keys: Vec<(C, Order)>,
}

impl<C: ColumnTrait + Copy> Sort<C> {
    /// A fixed order, for callers that do not take `?sort=`.
    pub fn by(keys: Vec<(C, Order)>) -> Self {
        Self { keys }
    }

    /// Parses `?sort=`: fields from `allowed`, each optionally prefixed by
    /// `-`, comma-separated; `default` (same syntax, trusted) when absent.
    pub fn parse(
        raw: Option<&str>,
        allowed: &[(&'static str, C)],
        default: &str,
        errors: &mut FieldErrors,
    ) -> Self {
        let text = raw.map(str::trim).filter(|t| !t.is_empty());
        let mut keys = Vec::new();
        for part in text.unwrap_or(default).split(',') {
            let part = part.trim();
            let (name, order) = match part.strip_prefix('-') {
                Some(name) => (name, Order::Desc),
                None => (part.strip_prefix('+').unwrap_or(part), Order::Asc),
            };
            match allowed.iter().find(|(allowed, _)| *allowed == name) {
                Some((_, column)) => keys.push((*column, order)),
                None => {
                    let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
                    errors.insert(
                        "sort".into(),
                        format!(
                            "\"{name}\" cannot be sorted on; use {} (prefix - for descending)",
                            names.join(", ")
                        ),
                    );
                    return Self { keys: Vec::new() };
                }
            }
        }
        Self { keys }
    }

    /// Orders `select` by the chosen keys, then by `id` as a tiebreak.
    pub fn apply<E>(&self, mut select: Select<E>, id: C) -> Select<E>
    where
        E: EntityTrait<Column = C>,
    {
        for (column, order) in &self.keys {
            select = select.order_by_with_nulls(*column, order.clone(), NullOrdering::Last);
        }
        let tiebreak = self
            .keys
            .first()
            .map(|(_, order)| order.clone())
            .unwrap_or(Order::Asc);
        select.order_by(id, tiebreak)
    }
}

/// One page of `select` (already filtered and sorted), with the total.
pub async fn fetch_page<E, M>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    page: PageRequest,
) -> Result<(Vec<M>, u64), DbErr>
where
    E: EntityTrait<Model = M>,
    M: FromQueryResult + Sized + Send + Sync,
{
    let total = select.clone().count(db).await?;
    let rows = select
        .offset(page.offset())
        .limit(page.per_page)
        .all(db)
        .await?;
    Ok((rows, total))
}

/// Case-insensitive "contains", the same on every backend; `%`, `_` and
/// `\` in the search text match themselves.
pub fn contains(column: impl sea_orm::IntoSimpleExpr, search: &str) -> SimpleExpr {
    // Imported here only: ExprTrait's min/max would shadow Ord's elsewhere.
    use sea_orm::sea_query::ExprTrait;
    let escaped = search
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    Expr::expr(Func::lower(column.into_simple_expr()))
        .like(LikeExpr::new(format!("%{escaped}%")).escape('\\'))
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

/// Validation helpers shared by the list filters.
pub mod filters {
    use crate::error::FieldErrors;

    /// `true` or `false`; anything else is a field error.
    pub fn boolean(field: &str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<bool> {
        match raw.map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                errors.insert(field.into(), "must be true or false".into());
                None
            }
        }
    }

    /// Trimmed text, at most `max` characters; empty counts as absent.
    pub fn text(
        field: &str,
        raw: Option<&str>,
        max: usize,
        errors: &mut FieldErrors,
    ) -> Option<String> {
        let text = raw.map(str::trim).filter(|t| !t.is_empty())?;
        if text.chars().count() > max {
            errors.insert(field.into(), format!("must be at most {max} characters"));
            return None;
        }
        Some(text.to_string())
    }

    /// A role name; anything else is a field error.
    pub fn role(
        field: &str,
        raw: Option<&str>,
        errors: &mut FieldErrors,
    ) -> Option<crate::staff::Role> {
        let text = raw.map(str::trim).filter(|t| !t.is_empty())?;
        match text.parse() {
            Ok(role) => Some(role),
            Err(problem) => {
                errors.insert(field.into(), problem);
                None
            }
        }
    }
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
