//! The one table of Microsoft cloud hosts. No other module names a host.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Cloud {
    #[default]
    Global,
    Gcc,
    GccHigh,
    Dod,
    China,
}

/// Roots of one cloud; `management` is `None` where Microsoft publishes no
/// Management Activity API host (21Vianet).
#[derive(Debug, Clone, Copy)]
pub struct CloudRoots {
    pub login: &'static str,
    pub graph: &'static str,
    pub management: Option<&'static str>,
}

impl Cloud {
    pub const ALL: [&'static str; 5] = ["global", "gcc", "gcc-high", "dod", "china"];

    pub fn parse(s: &str) -> Option<Cloud> {
        Some(match s {
            "global" => Cloud::Global,
            "gcc" => Cloud::Gcc,
            "gcc-high" => Cloud::GccHigh,
            "dod" => Cloud::Dod,
            "china" => Cloud::China,
            _ => return None,
        })
    }

    pub fn roots(self) -> CloudRoots {
        match self {
            Cloud::Global => CloudRoots {
                login: "https://login.microsoftonline.com",
                graph: "https://graph.microsoft.com",
                management: Some("https://manage.office.com"),
            },
            Cloud::Gcc => CloudRoots {
                login: "https://login.microsoftonline.com",
                graph: "https://graph.microsoft.com",
                management: Some("https://manage-gcc.office.com"),
            },
            Cloud::GccHigh => CloudRoots {
                login: "https://login.microsoftonline.us",
                graph: "https://graph.microsoft.us",
                management: Some("https://manage.office365.us"),
            },
            Cloud::Dod => CloudRoots {
                login: "https://login.microsoftonline.us",
                graph: "https://dod-graph.microsoft.us",
                management: Some("https://manage.protection.apps.mil"),
            },
            Cloud::China => CloudRoots {
                login: "https://login.chinacloudapi.cn",
                graph: "https://microsoftgraph.chinacloudapi.cn",
                management: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_and_has_roots() {
        for name in Cloud::ALL {
            let c = Cloud::parse(name).expect(name);
            assert!(c.roots().login.starts_with("https://"));
        }
        assert!(Cloud::China.roots().management.is_none());
        assert_eq!(
            Cloud::Gcc.roots().management,
            Some("https://manage-gcc.office.com")
        );
    }
}
