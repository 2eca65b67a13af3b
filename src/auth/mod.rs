//! OAuth 2.0 client-credentials tokens for Microsoft's APIs.
//!
//! [`tokens`] holds the per-tenant cache ([`TokenProvider`]); it is
//! indifferent to how a token is obtained: that is a [`Credential`]
//! ([`grant`]: the trait and the token endpoint's wire), one per kind in
//! [`credentials`]. Requests to the token endpoint are counted with the other
//! API requests ([`crate::api::observe`]); how often a failed one is tried
//! again is the credential's [`retry::TokenRetry`]. [`tenant`] finds the tenant GUID
//! behind a domain `tenant_id` (the authority's OpenID discovery document).

pub mod credentials;
pub mod grant;
pub mod retry;
pub mod tenant;
pub mod tokens;

pub use grant::{AuthError, Credential, IssuedToken};
pub use tokens::TokenProvider;
