//! Why a content type (or the feed as a whole) is not flowing, read from
//! Microsoft's answers: one stable description per cause, logged once per
//! change and shown on the status page.

use crate::api::ApiError;

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
            Problem::Failed(s) => s.clone(),
        }
    }

    /// Problems that do not go away by asking again soon.
    pub fn lasting(&self) -> bool {
        !matches!(self, Problem::Failed(_))
    }
}

/// What a Management API error means for the feed.
pub fn classify(e: &ApiError) -> Problem {
    match e.code() {
        Some("AF10001") => return Problem::MissingPermission,
        Some("AF20022") => return Problem::NotSubscribed,
        Some("AF20023") => return Problem::DisabledByAdmin,
        _ => {}
    }
    if let ApiError::Status { message, .. } = e {
        if message.contains("DataServiceException") && message.contains("does not exist") {
            return Problem::AuditLogOff;
        }
    }
    // Stable across runs: the operation and the code or status, not the
    // message (which may carry ids or timestamps).
    let what = match e {
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
    };
    Problem::Failed(what)
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
        let p = classify(&status(503, None, "busy at 12:00:01"));
        assert_eq!(p, Problem::Failed("subscriptions_start: HTTP 503".into()));
        assert!(!p.lasting() && Problem::AuditLogOff.lasting());
        for p in [
            Problem::AuditLogOff,
            Problem::MissingPermission,
            Problem::Disabled,
            Problem::DisabledByAdmin,
            Problem::NotSubscribed,
        ] {
            assert!(p.describe().len() > p.short().len());
        }
    }
}
