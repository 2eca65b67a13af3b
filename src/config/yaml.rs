//! The one place YAML is read and written, so the crate behind it is a
//! one-line choice. `serde_norway` is the maintained fork of the archived
//! `serde_yaml`: same API, same error texts with the key path first
//! (`tenants[0]: unknown field ...`), which is what [`ConfigError`] needs.

use super::error::ConfigError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Read a configuration file: `(text, source name)`, or an error naming it.
pub fn read_file(path: &std::path::Path) -> Result<(String, String), ConfigError> {
    let source = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((text, source)),
        Err(e) => Err(ConfigError {
            source,
            key: String::new(),
            reason: format!("cannot read file: {e}"),
        }),
    }
}

/// Parse `text`; a problem names `source`, the key path and the reason.
pub fn from_str<T: DeserializeOwned>(text: &str, source: &str) -> Result<T, ConfigError> {
    serde_norway::from_str(text).map_err(|e| {
        let msg = e.to_string();
        let (key, reason) = match msg.split_once(": ") {
            Some((k, r)) if !k.contains(' ') => (k.to_string(), r.to_string()),
            _ => (String::new(), msg),
        };
        ConfigError {
            source: source.to_string(),
            key,
            reason,
        }
    })
}

/// Render a value as YAML (`check-config`).
pub fn to_string<T: Serialize>(v: &T) -> String {
    serde_norway::to_string(v).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
}

/// Render a value as YAML after `edit` changed its tree (`check-config`
/// adds what it found out: each tenant's GUID). Maps keep their order.
pub fn to_string_edited<T: Serialize>(v: &T, edit: impl FnOnce(&mut Tree)) -> String {
    match serde_norway::to_value(v) {
        Ok(mut tree) => {
            edit(&mut tree);
            to_string(&tree)
        }
        Err(e) => format!("# cannot render: {e}\n"),
    }
}

/// A YAML document as a tree.
pub type Tree = serde_norway::Value;

/// `map` with `key: value` right after `after` (or at the end).
pub fn insert_after(map: &mut Tree, after: &str, key: &str, value: Tree) {
    let Some(m) = map.as_mapping_mut() else {
        return;
    };
    let mut out = serde_norway::Mapping::new();
    let mut placed = false;
    for (k, v) in std::mem::take(m) {
        let here = k.as_str() == Some(after);
        out.insert(k, v);
        if here {
            out.insert(key.into(), value.clone());
            placed = true;
        }
    }
    if !placed {
        out.insert(key.into(), value);
    }
    *m = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        items: Vec<Item>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        a: u32,
    }

    #[test]
    fn errors_name_the_key_path() {
        let e = from_str::<Doc>("items:\n  - a: 1\n  - b: 2\n", "f.yml").unwrap_err();
        assert_eq!(e.source, "f.yml");
        assert_eq!(e.key, "items[1]");
        assert!(e.reason.starts_with("unknown field `b`"), "{}", e.reason);
        let e = from_str::<Doc>("items: [ {a: x} ]", "f.yml").unwrap_err();
        assert_eq!(e.key, "items[0].a");
        let e = from_str::<Doc>("items: [", "f.yml").unwrap_err();
        assert!(e.to_string().starts_with("f.yml: "), "{e}");
    }
}
