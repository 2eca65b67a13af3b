//! What can go wrong with a call ([`ApiError`]), and how an error answer is
//! read and labelled: Microsoft's error body, the bounded `error_code` label
//! set, and which statuses are worth another try.

use crate::auth::AuthError;

/// `error_code` of answers that could not be parsed.
pub const MALFORMED: &str = "MalformedResponse";
/// `error_code` of a link refused because it leaves the tenant's hosts.
pub const FOREIGN_HOST: &str = "ForeignHost";

/// Error codes Microsoft documents for the Management Activity API and
/// Graph (plus what its gateways send): kept as `error_code` values.
/// Anything else is folded (see [`error_label`]), so a service that invents
/// codes cannot grow the label space.
pub const KNOWN_ERROR_CODES: &[&str] = &[
    // Management Activity API: the reference's "Errors" table, every code
    // (docs/microsoft.md), plus AF20024 and AF20055 seen in practice.
    "AF10001",
    "AF20001",
    "AF20002",
    "AF20003",
    "AF20010",
    "AF20011",
    "AF20012",
    "AF20013",
    "AF20020",
    "AF20021",
    "AF20022",
    "AF20023",
    "AF20024",
    "AF20030",
    "AF20031",
    "AF20050",
    "AF20051",
    "AF20052",
    "AF20053",
    "AF20054",
    "AF20055",
    "AF429",
    "AF50000",
    // Microsoft Graph
    "accessDenied",
    "activityLimitReached",
    "badRequest",
    "generalException",
    "invalidRange",
    "invalidRequest",
    "itemNotFound",
    "notAllowed",
    "notSupported",
    "quotaLimitReached",
    "resourceModified",
    "serviceNotAvailable",
    "unauthenticated",
    "BadRequest",
    "Forbidden",
    "Unauthorized",
    "NotFound",
    "TooManyRequests",
    "ServiceUnavailable",
    "GatewayTimeout",
    "InternalServerError",
    "UnknownError",
    "InvalidAuthenticationToken",
    "Authorization_RequestDenied",
    "Request_ResourceNotFound",
    "Request_BadRequest",
    "Request_ThrottledTemporarily",
    "ResourceNotFound",
    "UnsupportedApiVersion",
];

/// The `error_code` label of an error answer: Microsoft's code when it is a
/// known one, else `HTTP<status>` (a bounded set), else `other`.
pub fn error_label(code: Option<&str>, status: u16) -> String {
    match code {
        Some(c) if KNOWN_ERROR_CODES.contains(&c) => c.to_string(),
        _ if (100..=599).contains(&status) => format!("HTTP{status}"),
        _ => "other".to_string(),
    }
}

/// `error_code` of an answer too large to read: a 2xx is unreadable
/// (`MalformedResponse`), an error is its status.
pub(super) fn error_label_too_large(status: u16) -> String {
    match status {
        200..=299 => MALFORMED.to_string(),
        _ => error_label(None, status),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{operation}: {source}")]
    Auth {
        operation: &'static str,
        source: AuthError,
    },
    #[error("{operation}: transport error: {message}")]
    Transport {
        operation: &'static str,
        message: String,
    },
    #[error("{operation}: HTTP {status}{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Status {
        operation: &'static str,
        status: u16,
        /// Microsoft's error code (`AF20022`, `TooManyRequests`, …).
        code: Option<String>,
        message: String,
    },
    #[error("{operation}: response body larger than {limit} bytes")]
    TooLarge {
        operation: &'static str,
        limit: usize,
    },
    #[error(
        "{operation}: refusing to send a token to {url}: not a configured endpoint of this tenant"
    )]
    ForeignHost {
        operation: &'static str,
        url: String,
    },
    #[error("{operation}: malformed response: {message}")]
    Malformed {
        operation: &'static str,
        message: String,
    },
    /// The tenant stopped while the call was waiting (for its answer, a
    /// token, a backoff): nothing more was sent or read. No failure of
    /// Microsoft's, so never counted as one.
    #[error("{operation}: not finished: the tenant is stopping")]
    Stopped { operation: &'static str },
    /// The call needs the tenant GUID and the domain `tenant_id` could not
    /// be resolved to it (yet): nothing was sent.
    #[error("{operation}: the tenant GUID of {tenant_id} is not known: {message}")]
    Unresolved {
        operation: &'static str,
        tenant_id: String,
        message: String,
    },
}

impl ApiError {
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }
    /// The call ended because its tenant stopped ([`ApiError::Stopped`]).
    pub fn is_stopped(&self) -> bool {
        matches!(self, ApiError::Stopped { .. })
    }
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub(super) fn is_retryable_status(status: u16, code: Option<&str>) -> bool {
    matches!(status, 500 | 502 | 503 | 504) || code == Some("AF50000")
}

/// Graph and Management API errors are `{"error":{"code":"…","message":"…"}}`.
///
/// Returns the code when it looks like one (letters, digits, `_`, `.`, `-`;
/// at most 64 characters) and the message. Microsoft's Management API at
/// times splits a .NET exception's text at its first `": "` into `code` and
/// `message` (office-365-management-api#89, power-platform#184): such a
/// `code` is no code, so it is put back in front of the message, and the
/// text reads as it was thrown. A body in the single-quoted form the
/// troubleshooting guide prints (`{'error':{'code':'AF429',…}}`) is read
/// too; anything else is its first 200 bytes as the message.
pub fn parse_error_body(body: &[u8]) -> (Option<String>, String) {
    #[derive(serde::Deserialize)]
    struct Outer {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        code: Option<String>,
        message: Option<String>,
    }
    let parsed = serde_json::from_slice::<Outer>(body).ok().or_else(|| {
        // Only a body that opens like a Python dict is re-read this way.
        let text = std::str::from_utf8(body).ok()?.trim_start();
        text.starts_with("{'")
            .then(|| serde_json::from_str::<Outer>(&text.replace('\'', "\"")).ok())
            .flatten()
    });
    match parsed {
        Some(o) => {
            let message = o.error.message.unwrap_or_default();
            match o.error.code.map(|c| c.trim().to_string()) {
                Some(c) if is_code(&c) => (Some(c), message),
                Some(c) if !c.is_empty() => (None, format!("{c}: {message}")),
                _ => (None, message),
            }
        }
        None => {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_string();
            (None, text)
        }
    }
}

/// Whether `c` can be an error code (`AF20022`, `Authorization_RequestDenied`).
fn is_code(c: &str) -> bool {
    (1..=64).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let (c, m) =
            parse_error_body(br#"{"error":{"code":"AF20022","message":"No subscription found"}}"#);
        assert_eq!(
            (c.as_deref(), m.as_str()),
            (Some("AF20022"), "No subscription found")
        );
        let (c, m) = parse_error_body(b"<html>bad gateway</html>");
        assert_eq!((c, m.as_str()), (None, "<html>bad gateway</html>"));
    }

    /// A non-code in `code` (Microsoft's split of an exception's text) is
    /// put back in front of the message.
    #[test]
    fn a_split_exception_reads_whole_again() {
        let (c, m) = parse_error_body(br#"{"error":{"code":"StartSubscription [CorrId=1][TenantId=t] failed. Exception","message":"Microsoft.Office.Compliance.Audit.DataServiceException: Tenant t does not exist."}}"#);
        assert_eq!(c, None);
        assert_eq!(m, "StartSubscription [CorrId=1][TenantId=t] failed. Exception: Microsoft.Office.Compliance.Audit.DataServiceException: Tenant t does not exist.");
        let (c, _) = parse_error_body(br#"{"error":{"code":"","message":"m"}}"#);
        assert_eq!(c, None);
        let long = format!(
            r#"{{"error":{{"code":"{}","message":"m"}}}}"#,
            "A".repeat(65)
        );
        assert_eq!(parse_error_body(long.as_bytes()).0, None);
    }

    /// The troubleshooting guide prints its throttling answer with single
    /// quotes: still read as AF429.
    #[test]
    fn single_quoted_body() {
        let (c, m) = parse_error_body(b"{'error':{'code':'AF429','message':'Too many requests. Method=GetBlob, PublisherId=00000000-0000-0000-0000-000000000000'}}");
        assert_eq!(c.as_deref(), Some("AF429"));
        assert!(m.starts_with("Too many requests."), "{m}");
        let (c, _) = parse_error_body(b"{'error': broken");
        assert_eq!(c, None);
    }

    #[test]
    fn error_codes_are_bounded() {
        assert_eq!(error_label(Some("AF20022"), 400), "AF20022");
        for documented in ["AF20001", "AF20002", "AF20003", "AF20053", "AF20054"] {
            assert_eq!(error_label(Some(documented), 400), documented);
        }
        assert_eq!(error_label(Some("TooManyRequests"), 429), "TooManyRequests");
        assert_eq!(error_label(Some("Made-Up-42"), 400), "HTTP400");
        assert_eq!(error_label(None, 502), "HTTP502");
        assert_eq!(error_label(Some("x"), 999), "other");
        let labels: std::collections::HashSet<String> = (0..10_000)
            .map(|n| error_label(Some(&format!("Unknown{n}")), 400 + (n % 200) as u16))
            .collect();
        assert!(labels.len() <= 200, "{}", labels.len());
    }
}
