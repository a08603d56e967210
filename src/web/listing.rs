//! Paged tables for the HTML pages: `?page=` and `?q=` in, rows out.

use sea_orm::sea_query::{Expr, Func, SimpleExpr};
use sea_orm::{ConnectionTrait, EntityTrait, FromQueryResult, PaginatorTrait, Select};
use serde::Deserialize;

/// Rows per HTML page.
pub const PER_PAGE: u64 = 50;

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    /// Kept as text: a bad page number shows page 1 rather than an error.
    pub page: Option<String>,
    pub q: Option<String>,
}

impl ListQuery {
    pub fn page(&self) -> u64 {
        self.page
            .as_deref()
            .and_then(|p| p.parse::<u64>().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    }

    /// The search text, trimmed; empty when absent.
    pub fn search(&self) -> String {
        self.q
            .as_deref()
            .unwrap_or("")
            .trim()
            .chars()
            .take(100)
            .collect()
    }
}

pub struct Listing {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    pub total: u64,
    pub page: u64,
    pub q: String,
    pub base_path: &'static str,
}

impl Listing {
    pub fn first_shown(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            (self.page - 1) * PER_PAGE + 1
        }
    }

    pub fn last_shown(&self) -> u64 {
        ((self.page - 1) * PER_PAGE + self.rows.len() as u64).min(self.total)
    }

    /// The link to the page `step` pages away, if there is one.
    pub fn page_href(&self, step: i64) -> Option<String> {
        let target = self.page as i64 + step;
        let last = self.total.div_ceil(PER_PAGE).max(1) as i64;
        if target < 1 || target > last {
            return None;
        }
        let mut href = format!("{}?page={target}", self.base_path);
        if !self.q.is_empty() {
            href.push_str("&q=");
            href.extend(form_urlencoded::byte_serialize(self.q.as_bytes()));
        }
        Some(href)
    }
}

/// One page of a query, with the total count.
pub async fn fetch_page<E, M>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    page: u64,
) -> Result<(Vec<M>, u64), sea_orm::DbErr>
where
    E: EntityTrait<Model = M>,
    M: FromQueryResult + Sized + Send + Sync,
{
    let paginator = select.paginate(db, PER_PAGE);
    let total = paginator.num_items().await?;
    let rows = paginator.fetch_page(page.saturating_sub(1)).await?;
    Ok((rows, total))
}

/// Case-insensitive "contains", the same on every backend; `%` and `_` in
/// the search are matched literally.
pub fn contains(column: impl sea_orm::IntoSimpleExpr, search: &str) -> SimpleExpr {
    // Imported here only: ExprTrait's min/max would shadow Ord's elsewhere.
    use sea_orm::sea_query::ExprTrait;
    let escaped = search
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    Expr::expr(Func::lower(column.into_simple_expr()))
        .like(sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\'))
}

/// A timestamp as staff read it.
pub fn when(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn when_opt(at: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.as_ref().map(when).unwrap_or_else(|| "—".into())
}

pub fn or_dash(value: &Option<impl ToString>) -> String {
    value
        .as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| "—".into())
}
