//! Graph `admin/serviceAnnouncement` lists, paged by `$skiptoken` with an
//! absolute `@odata.nextLink`, as Graph does; enum values in the schema's
//! camelCase, or (`pascal_enums`) in the PascalCase Microsoft's API pages
//! print.

use super::faults::{graph_error, respond};
use super::token::bearer_ok;
use super::{base_url, url_param, SimState};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub fn routes() -> Router<Arc<SimState>> {
    Router::new().route("/v1.0/admin/serviceAnnouncement/{list}", get(list))
}

/// Shared preamble of every simulated data API call: auth, then faults.
pub async fn gate(st: &SimState, headers: &HeaderMap) -> Result<(), Response> {
    if !bearer_ok(st, headers) {
        return Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token has expired or is not yet valid.",
        ));
    }
    let n = st.api_requests.fetch_add(1, Ordering::SeqCst) + 1;
    let (inj, slow) = {
        let mut f = st.faults();
        (f.next(n), f.slow)
    };
    if let Some(kind) = inj.kind() {
        st.count_injected(kind);
    }
    if !slow.is_zero() {
        tokio::time::sleep(slow).await;
    }
    if inj == super::faults::Injected::Hang {
        // No answer at all, not even headers: the client's timeout must fire.
        tokio::time::sleep(std::time::Duration::from_secs(24 * 3600)).await;
    }
    match respond(inj) {
        Some(r) => Err(r),
        None => Ok(()),
    }
}

/// Enum-valued properties of the three lists.
const ENUM_FIELDS: [&str; 5] = ["status", "classification", "origin", "category", "severity"];

/// `serviceRestored` → `ServiceRestored` in every enum field of `items`.
fn pascal_case(items: &mut serde_json::Value) {
    for item in items.as_array_mut().into_iter().flatten() {
        for f in ENUM_FIELDS {
            if let Some(serde_json::Value::String(v)) = item.get_mut(f) {
                let mut c = v.chars();
                if let Some(first) = c.next() {
                    *v = first.to_uppercase().chain(c).collect();
                }
            }
        }
    }
}

fn page<T: Serialize>(
    items: &[T],
    skip: usize,
    size: usize,
    context: &str,
    next_base: &str,
    pascal: bool,
) -> String {
    let end = (skip + size).min(items.len());
    let mut body = serde_json::json!({
        "@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#admin/serviceAnnouncement/{context}"),
        "value": items.get(skip..end).unwrap_or(&[]),
    });
    if pascal {
        pascal_case(&mut body["value"]);
    }
    if end < items.len() {
        body["@odata.nextLink"] =
            serde_json::Value::String(format!("{next_base}?$skiptoken={end}"));
    }
    body.to_string()
}

async fn list(
    State(st): State<Arc<SimState>>,
    Path(list): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = gate(&st, &headers).await {
        return r;
    }
    let skip = match url_param(q.as_deref().unwrap_or(""), "$skiptoken") {
        None => 0,
        Some(s) => match s.parse() {
            Ok(n) => n,
            Err(_) => {
                return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid $skiptoken.")
            }
        },
    };
    let next_base = format!(
        "{}/v1.0/admin/serviceAnnouncement/{list}",
        base_url(&headers)
    );
    let (size, pascal) = (st.opts.page_size.max(1), st.opts.pascal_enums);
    let data = st.scenario();
    let body = match list.as_str() {
        "healthOverviews" => page(
            &data.overviews,
            skip,
            size,
            "healthOverviews",
            &next_base,
            pascal,
        ),
        "issues" => page(&data.issues, skip, size, "issues", &next_base, pascal),
        "messages" => page(&data.messages, skip, size, "messages", &next_base, pascal),
        _ => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("Resource not found for the segment '{list}'."),
            )
        }
    };
    ([(header::CONTENT_TYPE, "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")], body).into_response()
}
