//! Metric definitions and rendering.
//!
//! Every family (name, type, labels, HELP) is declared once, in the
//! [`catalog`]; docs/metrics.md is generated from it.
//!
//! Two kinds of series, kept apart on purpose:
//! - **snapshot families** ([`Family`], rendered by [`text`]): gauges
//!   describing what Microsoft said at the last refresh. A collector renders
//!   them to bytes once per refresh; a scrape only copies those bytes.
//! - **live metrics** ([`LiveFamily`], held by [`Live`]): counters and
//!   histograms updated as requests happen (API calls, tokens, audit
//!   records), in [`family`] vectors that write themselves to text without a
//!   gather step.
//!
//! - **process metrics** ([`ProcessFamily`], [`process`]): the `process_*`
//!   families every exporter serves, read from `/proc/self` by the scrape
//!   of `/metrics`.
//!
//! A scrape walks them once, into a [`body::ScrapeBody`]: the plain body, or a
//! gzip body spliced from cached deflate segments ([`gzip`]).

pub mod body;
pub mod catalog;
pub mod exposition;
pub mod family;
pub mod gzip;
pub mod live;
pub mod process;
pub mod text;

pub use catalog::{Family, Kind, LiveFamily, ProcessFamily};
pub use exposition::Encoding;
pub use live::Live;
pub use text::SnapshotWriter;
