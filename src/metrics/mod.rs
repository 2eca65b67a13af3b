//! Metric definitions and rendering.
//!
//! Two kinds of series, kept apart on purpose:
//! - **snapshot families** ([`text`]): gauges describing what Microsoft said at
//!   the last refresh. A collector renders them to bytes once per refresh; a
//!   scrape only copies those bytes.
//! - **live metrics** ([`Live`]): counters and histograms updated as requests
//!   happen (API calls, tokens, audit records), in [`family`] vectors that
//!   write themselves to text without a gather step.
//!
//! A scrape walks both once, into a [`body::ScrapeBody`]: the plain body, or a
//! gzip body spliced from cached deflate segments ([`gzip`]).

pub mod body;
pub mod exposition;
pub mod family;
pub mod gzip;
pub mod live;
pub mod text;

pub use exposition::Encoding;
pub use live::Live;
pub use text::{Family, SnapshotWriter};
