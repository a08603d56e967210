//! The audit log page: every change, newest first, searchable.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;

use crate::access::SignedIn;
use crate::app::AppState;
use crate::audit::{self, AuditFilter, AUDIT_SORTS};
use crate::error::{AppError, FieldErrors};
use crate::query::Sort;
use crate::web::layout::Chrome;
use crate::web::listing::{when, ListQuery, Listing};

/// The audit page's route; `app::build_router` merges it into the pages.
pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(audit))
}

#[derive(Template, WebTemplate)]
#[template(path = "list.html")]
pub struct ListPage {
    chrome: Chrome,
    heading: &'static str,
    description: &'static str,
    searchable: bool,
    empty_title: &'static str,
    empty_hint: &'static str,
    base_path: &'static str,
    listing: Listing,
}

/// What differs between the list pages.
struct ListSpec {
    nav: &'static str,
    heading: &'static str,
    description: &'static str,
    base_path: &'static str,
    searchable: bool,
    empty_title: &'static str,
    empty_hint: &'static str,
    columns: Vec<&'static str>,
}

impl ListSpec {
    fn render(
        self,
        chrome: Chrome,
        query: &ListQuery,
        rows: Vec<Vec<String>>,
        total: u64,
    ) -> ListPage {
        ListPage {
            chrome: chrome.at(self.nav, self.heading),
            heading: self.heading,
            description: self.description,
            searchable: self.searchable,
            empty_title: self.empty_title,
            empty_hint: self.empty_hint,
            base_path: self.base_path,
            listing: Listing {
                columns: self.columns,
                rows,
                total,
                page: query.page(),
                q: query.search(),
                base_path: self.base_path,
            },
        }
    }
}

pub async fn audit(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<ListPage, AppError> {
    let filter = AuditFilter {
        search: Some(query.search()).filter(|q| !q.is_empty()),
        ..Default::default()
    };
    let mut ignored = FieldErrors::new();
    let newest_first = Sort::parse(None, AUDIT_SORTS, "-created_at", &mut ignored);
    let (entries, total) =
        audit::list_audit_log(&state.db.main, &filter, &newest_first, query.page_request()).await?;
    let rows = entries
        .into_iter()
        .map(|e| {
            vec![
                when(&e.created_at),
                format!("{} ({})", e.actor_name, e.actor_kind),
                e.action,
                match e.entity_id {
                    Some(id) => format!("{} #{id}", e.entity_type),
                    None => e.entity_type,
                },
                e.details.unwrap_or_default(),
            ]
        })
        .collect();
    Ok(ListSpec {
        nav: "audit",
        heading: "Audit log",
        description: "Every change, who made it and when; newest first.",
        base_path: "/audit",
        searchable: true,
        empty_title: "Nothing has changed yet.",
        empty_hint: "Changes made in the UI, the API and the CLI are recorded here.",
        columns: vec!["When", "Who", "Action", "What", "Details"],
    }
    .render(chrome, &query, rows, total))
}
