//! Where one walk over the exposition writes: a plain body, or a gzip body
//! spliced from cached segments ([`super::gzip::GzipBody`]).
//!
//! The walk (`Store::render` in `collect::store`) tells the body which
//! text is *stable* (the same at the next scrape whenever its hash is: a
//! snapshot's family text, a header, a collector's success) and which is
//! *volatile* (written anew each scrape: refresh timestamps and durations,
//! ages, the live counters). A plain body appends both alike.

/// The receiver of one walk's text, in exposition order.
pub trait ScrapeBody<'a> {
    /// Stable text that outlives the walk, with its
    /// [`content_hash`](super::text::content_hash).
    fn stable(&mut self, hash: u64, text: &'a str);
    /// The buffer volatile text is appended to.
    fn volatile(&mut self) -> &mut String;
}

/// The plain body: everything appended in order.
impl<'a> ScrapeBody<'a> for String {
    fn stable(&mut self, _: u64, text: &'a str) {
        self.push_str(text);
    }

    fn volatile(&mut self) -> &mut String {
        self
    }
}
