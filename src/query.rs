//! The query model of every list: which page, in which order, matching
//! what. No HTTP here: services take these types, and the edges
//! (`web::pagination` for the API's `?page=`, `web::listing` for the pages)
//! build them from requests.
//!
//! Sorting: fields from a list's allow-list, `-` in front for descending;
//! empty values sort last either way; ties are broken by id, in the
//! direction of the first field, so that pages never overlap or skip rows.

use sea_orm::sea_query::{Expr, Func, LikeExpr, NullOrdering, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, Order, PaginatorTrait,
    QueryOrder, QuerySelect, Select,
};

use crate::error::FieldErrors;

pub const DEFAULT_PER_PAGE: u64 = 50;
pub const MAX_PER_PAGE: u64 = 500;
/// Far beyond any real list; keeps `page * per_page` from overflowing.
pub const MAX_PAGE: u64 = 1_000_000;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u64,
    pub per_page: u64,
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

    /// A record's id: a positive whole number.
    pub fn id(field: &str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<i32> {
        let text = raw.map(str::trim).filter(|t| !t.is_empty())?;
        match text.parse::<i32>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                errors.insert(field.into(), "must be a positive whole number".into());
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

    /// A value of a type that parses itself with a message (a role, a
    /// status); anything else is a field error with that message.
    pub fn parsed<T: std::str::FromStr<Err = String>>(
        field: &str,
        raw: Option<&str>,
        errors: &mut FieldErrors,
    ) -> Option<T> {
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
