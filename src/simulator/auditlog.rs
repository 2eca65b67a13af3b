//! Microsoft Purview's Audit Log Query API in Graph (v1.0
//! `/security/auditLog/queries`) over the same records the simulated
//! Management Activity API serves: create a query over a time range, its
//! status progressing `notStarted` → `running` → `succeeded` after
//! `query_delay`, its records paged by `$skiptoken` with an absolute
//! `@odata.nextLink`, each with its unified-audit-log record as
//! `auditData`. It searches the whole log: blobs never listed, listed late,
//! expired or poisoned in the Management API still hold their records here.
//! Faults: the first `failed_queries` queries end `failed`;
//! `query_forbidden` answers 403 to every call.

use super::faults::graph_error;
use super::graph::gate;
use super::{base_url, url_param, SimState};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::value::RawValue;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

const QUERIES: &str = "/v1.0/security/auditLog/queries";

/// One query as created.
#[derive(Debug, Clone)]
pub struct SimQuery {
    pub id: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub created: Instant,
    /// Ends `failed` instead of `succeeded`.
    pub fails: bool,
    /// Its `auditLogRecord`s as JSON texts, ordered by creation time.
    pub records: Vec<String>,
}

pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route(QUERIES, post(create))
        .route(&format!("{QUERIES}/{{id}}"), get(status))
        .route(&format!("{QUERIES}/{{id}}/records"), get(records))
}

fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Auth, faults, then the 403 switch.
async fn preamble(st: &SimState, headers: &HeaderMap) -> Result<(), Response> {
    gate(st, headers).await?;
    if st.audit().opts.query_forbidden {
        return Err(graph_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Insufficient privileges to complete the operation. Required permission: AuditLogsQuery.Read.All.",
        ));
    }
    Ok(())
}

/// The `auditLogRecordType` and `service` Graph shows for a record the
/// Management API delivers in `content_type` with this `Workload`.
fn record_type(content_type: &str, workload: &str) -> &'static str {
    match (content_type, workload) {
        ("Audit.Exchange", _) => "exchangeItem",
        ("Audit.SharePoint", "OneDrive") => "oneDrive",
        ("Audit.SharePoint", _) => "sharePointFileOperation",
        ("Audit.AzureActiveDirectory", _) => "azureActiveDirectoryStsLogon",
        ("DLP.All", "Exchange") => "complianceDLPExchange",
        ("DLP.All", _) => "complianceDLPSharePoint",
        (_, "PowerBI") => "powerBIAudit",
        (_, "MicrosoftForms") => "microsoftForms",
        _ => "microsoftTeams",
    }
}

/// Every record of the log created in `[start_ms, end_ms)`, each once,
/// as `auditLogRecord` JSON, oldest first.
fn records_in(st: &SimState, start_ms: i64, end_ms: i64) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Common {
        #[serde(rename = "Id")]
        id: String,
        #[serde(rename = "CreationTime")]
        creation: String,
        #[serde(rename = "Workload", default)]
        workload: String,
        #[serde(rename = "Operation", default)]
        operation: String,
    }
    let audit = st.audit();
    let mut seen = BTreeSet::new();
    let mut out: Vec<(i64, String)> = Vec::new();
    for b in audit.blobs.iter().filter(|b| !b.poison) {
        let Ok(raws) = serde_json::from_str::<Vec<&RawValue>>(&b.body) else {
            continue;
        };
        for raw in raws {
            let Ok(c) = serde_json::from_str::<Common>(raw.get()) else {
                continue;
            };
            let Some(t) = crate::timefmt::parse_unix(&c.creation).map(|t| t as i64) else {
                continue;
            };
            if t * 1_000 < start_ms || t * 1_000 >= end_ms || !seen.insert(c.id.clone()) {
                continue;
            }
            // The resource id is Graph's own, not the record's `Id`.
            let resource_id: String = c.id.chars().rev().collect();
            let rec = format!(
                r#"{{"id":"{resource_id}","createdDateTime":"{}","auditLogRecordType":"{}","operation":{},"organizationId":"{}","service":{},"auditData":{}}}"#,
                super::iso_ms(t * 1_000),
                record_type(&b.content_type, &c.workload),
                serde_json::Value::String(c.operation),
                audit.tenant_id,
                serde_json::Value::String(c.workload),
                raw.get(),
            );
            out.push((t, rec));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out.into_iter().map(|(_, r)| r).collect()
}

fn query_json(q: &SimQuery, status: &str, base: &str) -> String {
    serde_json::json!({
        "@odata.context": format!("{base}/v1.0/$metadata#security/auditLog/queries/$entity"),
        "id": q.id,
        "displayName": "",
        "filterStartDateTime": super::iso_ms(q.start_ms),
        "filterEndDateTime": super::iso_ms(q.end_ms),
        "status": status,
        "isRecordCountLimitExceeded": false,
    })
    .to_string()
}

fn status_of(q: &SimQuery, delay: std::time::Duration) -> &'static str {
    let age = q.created.elapsed();
    if age < delay / 2 {
        "notStarted"
    } else if age < delay {
        "running"
    } else if q.fails {
        "failed"
    } else {
        "succeeded"
    }
}

fn parse_time(v: &serde_json::Value, key: &str) -> Option<i64> {
    let s = v.get(key)?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

async fn create(State(st): State<Arc<SimState>>, headers: HeaderMap, body: String) -> Response {
    if let Err(r) = preamble(&st, &headers).await {
        return r;
    }
    let v: serde_json::Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(_) => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid JSON."),
    };
    let (Some(start_ms), Some(end_ms)) = (
        parse_time(&v, "filterStartDateTime"),
        parse_time(&v, "filterEndDateTime"),
    ) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "filterStartDateTime and filterEndDateTime are required.",
        );
    };
    let records = records_in(&st, start_ms, end_ms);
    let mut audit = st.audit();
    let n = audit.queries.len();
    let q = SimQuery {
        id: format!("168ec429-084b-a489-90d8-{:012x}", n + 1),
        start_ms,
        end_ms,
        created: Instant::now(),
        fails: n < audit.opts.failed_queries,
        records,
    };
    let body = query_json(&q, "notStarted", &base_url(&headers));
    audit.queries.push(q);
    json(StatusCode::CREATED, body)
}

fn find(st: &SimState, id: &str) -> Result<(SimQuery, std::time::Duration), Box<Response>> {
    let audit = st.audit();
    match audit.queries.iter().find(|q| q.id == id) {
        Some(q) => Ok((q.clone(), audit.opts.query_delay)),
        None => Err(Box::new(graph_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The audit log query was not found.",
        ))),
    }
}

async fn status(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = preamble(&st, &headers).await {
        return r;
    }
    match find(&st, &id) {
        Ok((q, delay)) => json(
            StatusCode::OK,
            query_json(&q, status_of(&q, delay), &base_url(&headers)),
        ),
        Err(r) => *r,
    }
}

async fn records(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = preamble(&st, &headers).await {
        return r;
    }
    let (q, delay) = match find(&st, &id) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if status_of(&q, delay) != "succeeded" {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The audit log query has not succeeded.",
        );
    }
    let skip = match url_param(query.as_deref().unwrap_or(""), "$skiptoken") {
        None => 0,
        Some(s) => match s.parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid $skiptoken.")
            }
        },
    };
    let size = st.audit().opts.query_page_size.max(1);
    let end = (skip + size).min(q.records.len());
    let base = base_url(&headers);
    let mut body = format!(
        r#"{{"@odata.context":"{base}/v1.0/$metadata#security/auditLog/queries('{id}')/records","value":["#
    );
    body.push_str(&q.records.get(skip..end).unwrap_or(&[]).join(","));
    body.push(']');
    if end < q.records.len() {
        body.push_str(&format!(
            r#","@odata.nextLink":"{base}{QUERIES}/{id}/records?$skiptoken={end}""#
        ));
    }
    body.push('}');
    json(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_types_by_content_type() {
        assert_eq!(record_type("Audit.Exchange", "Exchange"), "exchangeItem");
        assert_eq!(record_type("DLP.All", "Exchange"), "complianceDLPExchange");
        assert_eq!(record_type("Audit.General", "PowerBI"), "powerBIAudit");
    }
}
