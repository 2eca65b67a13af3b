//! The compact JSON writer of the record generator: keys in the order
//! given, strings escaped as Microsoft does.

use std::fmt::Write as _;

/// A compact JSON writer: keys in the order given, strings escaped as
/// Microsoft does (quotes, backslashes, control characters; UTF-8 as is).
pub(super) struct J<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> J<'a> {
    pub(super) fn obj(out: &'a mut String) -> Self {
        out.push('{');
        J { out, first: true }
    }
    fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(k);
        self.out.push_str("\":");
        self.out
    }
    pub(super) fn s(&mut self, k: &str, v: &str) {
        let o = self.key(k);
        esc(o, v);
    }
    pub(super) fn n(&mut self, k: &str, v: i64) {
        let o = self.key(k);
        let _ = write!(o, "{v}");
    }
    pub(super) fn b(&mut self, k: &str, v: bool) {
        self.key(k).push_str(if v { "true" } else { "false" });
    }
    /// Already JSON.
    pub(super) fn raw(&mut self, k: &str, v: &str) {
        self.key(k).push_str(v);
    }
    /// A nested object.
    pub(super) fn o(&mut self, k: &str, f: impl FnOnce(&mut J<'_>)) {
        let o = self.key(k);
        let mut inner = J::obj(o);
        f(&mut inner);
        inner.end();
    }
    /// An array of `n` objects.
    pub(super) fn arr(&mut self, k: &str, n: usize, mut f: impl FnMut(usize, &mut J<'_>)) {
        let o = self.key(k);
        o.push('[');
        for i in 0..n {
            if i > 0 {
                o.push(',');
            }
            let mut inner = J::obj(o);
            f(i, &mut inner);
            inner.end();
        }
        o.push(']');
    }
    /// `[{"Name":…,"Value":…},…]`, the shape of `ExtendedProperties`,
    /// `Parameters`, `DeviceProperties`, `OperationProperties`.
    pub(super) fn nv(&mut self, k: &str, pairs: &[(&str, &str)]) {
        self.arr(k, pairs.len(), |i, j| {
            j.s("Name", pairs[i].0);
            j.s("Value", pairs[i].1);
        });
    }
    pub(super) fn end(self) {
        self.out.push('}');
    }
}

fn esc(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub(super) fn iso(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}
