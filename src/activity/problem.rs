//! Why a content type (or the feed as a whole) is not flowing, read from
//! Microsoft's answers: one stable description per cause, logged once per
//! change and shown on the status page.

use crate::api::ApiError;

/// Problem scope of a failing checkpoint (`m365_collector_success` 0);
/// here, not in `checkpoint`, so the status can name it without depending
/// on the checkpoint.
pub const CHECKPOINT_SCOPE: &str = "state_file";

/// Why a content type (or the feed as a whole) is not flowing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// `/start` answered "DataServiceException: Tenant … does not exist".
    AuditLogOff,
    /// AF10001.
    MissingPermission,
    /// `subscriptions/list` says `disabled`.
    Disabled,
    /// AF20023.
    DisabledByAdmin,
    /// Not in `subscriptions/list`, or AF20022.
    NotSubscribed,
    /// An answer the Management API reference documents as lasting: AF20010
    /// (the token's tenant is not the URL's), AF20011/AF20012 (tenant
    /// unknown or misconfigured), AF20013 (the tenant in the URL is not a
    /// GUID), AF20020 (invalid content type). Asking again every poll
    /// cannot help; the code is kept.
    Refused(String),
    /// A domain `tenant_id` not (yet) resolved to the tenant GUID the
    /// Management API needs: why, in one stable line. Resolution is retried
    /// with its own backoff.
    TenantUnresolved(String),
    /// Anything else (throttled past all retries, 5xx, I/O …), one stable line.
    Failed(String),
}

impl Problem {
    /// The one log line an operator reads.
    pub fn describe(&self) -> String {
        match self {
            Problem::AuditLogOff => "unified audit logging is off for this tenant (subscriptions/start answered \"Tenant … does not exist\"): turn on auditing in Microsoft Purview; content types can be subscribed only once it is on".into(),
            Problem::MissingPermission => "the app lacks the Office 365 Management API permission (AF10001): grant ActivityFeed.Read (and ActivityFeed.ReadDlp for DLP.All) as an application permission with admin consent".into(),
            Problem::Disabled => "subscription disabled (subscriptions/list status \"disabled\"): start it again, or set activity.start_subscriptions: true".into(),
            Problem::DisabledByAdmin => "subscription disabled by an admin (AF20023): it cannot be started until an admin re-enables it".into(),
            Problem::NotSubscribed => "no subscription for this content type (AF20022): set activity.start_subscriptions: true or start it".into(),
            Problem::Refused(code) => format!("the Management API refused the tenant's calls ({code}: {}); asked again every 15 minutes, not every poll", refusal(code)),
            Problem::TenantUnresolved(why) => format!("the tenant GUID the Management API needs is not known yet ({why}); the domain is resolved again with backoff (or set tenant_id to the directory's GUID)"),
            Problem::Failed(s) => s.clone(),
        }
    }

    /// Short, stable form for the collector's error line.
    pub fn short(&self) -> String {
        match self {
            Problem::AuditLogOff => "unified audit log off".into(),
            Problem::MissingPermission => "missing permission (AF10001)".into(),
            Problem::Disabled => "subscription disabled".into(),
            Problem::DisabledByAdmin => "subscription disabled by an admin (AF20023)".into(),
            Problem::NotSubscribed => "no subscription (AF20022)".into(),
            Problem::Refused(code) => format!("refused ({code})"),
            Problem::TenantUnresolved(_) => "tenant GUID not resolved".into(),
            Problem::Failed(s) => s.clone(),
        }
    }

    /// Problems that do not go away by asking again soon.
    pub fn lasting(&self) -> bool {
        !matches!(self, Problem::Failed(_) | Problem::TenantUnresolved(_))
    }
}

/// Codes the reference documents as lasting (see [`Problem::Refused`]).
const LASTING: [&str; 5] = ["AF20010", "AF20011", "AF20012", "AF20013", "AF20020"];

/// What a lasting refusal means, from the reference's error table.
fn refusal(code: &str) -> &'static str {
    match code {
        "AF20010" => "the tenant id in the URL does not match the access token's tenant: check tenant_id and the app registration's tenant",
        "AF20011" => "the tenant does not exist or has been deleted",
        "AF20012" => "the tenant is incorrectly configured",
        "AF20013" => "the tenant id in the URL is not a valid GUID: set tenant_id to the directory's GUID",
        "AF20020" => "the content type is not valid",
        _ => "lasting",
    }
}

/// Whether an error body carries the "unified audit log off" answer of
/// `/start`: `DataServiceException` … `Tenant` … `does not exist`, anywhere
/// in code and message joined (Microsoft splits the exception's text
/// between the two in more than one way; see docs/microsoft.md).
pub fn is_audit_log_off(code: Option<&str>, message: &str) -> bool {
    let text = format!("{} {message}", code.unwrap_or_default()).to_ascii_lowercase();
    text.find("dataserviceexception").is_some_and(|at| {
        let rest = &text[at..];
        rest.find("tenant")
            .is_some_and(|t| rest[t..].contains("does not exist"))
    })
}

/// The webhook's problem when `/start` with it failed: for AF20021, why
/// Microsoft could not validate the address (its scheme, when Microsoft
/// says "The address must begin with HTTPS").
pub fn webhook_refused(address: &str, e: &ApiError, short: &str) -> String {
    let message = match e {
        ApiError::Status { message, .. } => message.as_str(),
        _ => "",
    };
    // The reference's AF20021 text names the cause: "The address must
    // begin with HTTPS." or "The endpoint did not return HTTP 200.".
    match e.code() {
        Some("AF20021") if message.to_ascii_lowercase().contains("must begin with https") => format!(
            "webhook not registered: Microsoft refused {address} (AF20021: the address must begin with https://, not {}://); polling continues",
            address.split("://").next().unwrap_or_default()
        ),
        Some("AF20021") => format!(
            "webhook not registered: Microsoft could not validate {address} (AF20021; the address must answer its validation POST with 200); polling continues"
        ),
        _ => format!("webhook not registered ({short}); polling continues"),
    }
}

/// What a Management API error means for the feed.
pub fn classify(e: &ApiError) -> Problem {
    match e.code() {
        Some("AF10001") => return Problem::MissingPermission,
        Some("AF20022") => return Problem::NotSubscribed,
        Some("AF20023") => return Problem::DisabledByAdmin,
        Some(c) if LASTING.contains(&c) => return Problem::Refused(c.to_string()),
        _ => {}
    }
    match e {
        ApiError::Status { code, message, .. } if is_audit_log_off(code.as_deref(), message) => {
            return Problem::AuditLogOff
        }
        ApiError::Unresolved { message, .. } => return Problem::TenantUnresolved(message.clone()),
        _ => {}
    }
    // Stable across runs: the operation and the code or status, not the
    // message (which may carry ids or timestamps).
    Problem::Failed(stable_line(e))
}

/// One line per cause, stable across runs: the operation and the code or
/// status, not the message (which may carry ids or timestamps).
pub fn stable_line(e: &ApiError) -> String {
    match e {
        ApiError::Status {
            operation,
            status,
            code,
            ..
        } => format!(
            "{operation}: HTTP {status}{}",
            code.as_deref().map(|c| format!(" {c}")).unwrap_or_default()
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: Option<&str>, message: &str) -> ApiError {
        ApiError::Status {
            operation: "subscriptions_start",
            status,
            code: code.map(str::to_string),
            message: message.to_string(),
        }
    }

    #[test]
    fn classifies_microsoft_answers() {
        assert_eq!(classify(&status(401, Some("AF10001"), "The permission set () sent in the request does not include the expected permission.")), Problem::MissingPermission);
        assert_eq!(
            classify(&status(400, Some("AF20022"), "No subscription found")),
            Problem::NotSubscribed
        );
        assert_eq!(
            classify(&status(400, Some("AF20023"), "disabled")),
            Problem::DisabledByAdmin
        );
        // The real "audit log off" answer has a long non-code in `code`
        // (dropped by the client) and the exception in `message`.
        assert_eq!(
            classify(&status(400, None, "StartSubscription [...] failed. Exception: Microsoft.Office.Compliance.Audit.DataServiceException: Tenant 8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b does not exist.\r\n   at ...")),
            Problem::AuditLogOff
        );
        // The same text with Microsoft's split elsewhere: inside the
        // exception's name, and wholly in `code`.
        let split = |code: &str, message: &str| ApiError::Status {
            operation: "subscriptions_start",
            status: 400,
            code: Some(code.to_string()),
            message: message.to_string(),
        };
        assert_eq!(
            classify(&split(
                "Microsoft.Office.Compliance.Audit.DataServiceException",
                "Tenant 8f3c2a1e does not exist."
            )),
            Problem::AuditLogOff
        );
        assert_eq!(
            classify(&status(400, None, "StartSubscription [CorrId=1] failed. Exception: Microsoft.Office.Compliance.Audit.DATASERVICEEXCEPTION: tenant x DOES NOT EXIST.")),
            Problem::AuditLogOff
        );
        assert_ne!(
            classify(&status(
                400,
                None,
                "Tenant x does not exist. DataServiceException"
            )),
            Problem::AuditLogOff,
            "the tenant's absence is said by the exception, not before it"
        );
        for code in ["AF20010", "AF20011", "AF20012", "AF20013", "AF20020"] {
            let p = classify(&status(
                400,
                Some(code),
                "The tenant ID passed in the URL (contoso.com) is not a valid GUID.",
            ));
            assert_eq!(p, Problem::Refused(code.into()));
            assert!(p.lasting());
            assert!(p.describe().contains(code));
        }
        let unresolved = classify(&ApiError::Unresolved {
            operation: "subscriptions_list",
            tenant_id: "contoso.com".into(),
            message: "connection failed".into(),
        });
        assert_eq!(
            unresolved,
            Problem::TenantUnresolved("connection failed".into())
        );
        assert!(!unresolved.lasting(), "resolution has a backoff of its own");
        let p = classify(&status(503, None, "busy at 12:00:01"));
        assert_eq!(p, Problem::Failed("subscriptions_start: HTTP 503".into()));
        assert!(!p.lasting() && Problem::AuditLogOff.lasting());
        for p in [
            Problem::AuditLogOff,
            Problem::MissingPermission,
            Problem::Disabled,
            Problem::DisabledByAdmin,
            Problem::NotSubscribed,
            Problem::Refused("AF20013".into()),
            Problem::TenantUnresolved("x".into()),
        ] {
            assert!(p.describe().len() > p.short().len());
        }
    }

    #[test]
    fn webhook_refusal_names_the_scheme() {
        let af20021 = |m: &str| status(400, Some("AF20021"), m);
        let why = webhook_refused(
            "http://e.example/webhook/t",
            &af20021("The webhook endpoint {0} could not be validated. The address must begin with HTTPS."),
            "",
        );
        assert!(
            why.contains("must begin with https://, not http://"),
            "{why}"
        );
        let why = webhook_refused(
            "https://e.example/webhook/t",
            &af20021("The webhook endpoint could not be validated. The endpoint did not return HTTP 200."),
            "",
        );
        assert!(why.contains("validation POST with 200"), "{why}");
        let why = webhook_refused(
            "https://e",
            &status(503, None, "x"),
            "subscriptions_start: HTTP 503",
        );
        assert_eq!(
            why,
            "webhook not registered (subscriptions_start: HTTP 503); polling continues"
        );
    }
}
