//! The simulator's tenant as one `tenants:` item of the config, written
//! once: the identity the simulator accepts (tenant id, client id, client
//! secret), its endpoints, then each test's own keys.
//!
//! ```ignore
//! let t = SimTenant::new("contoso", &url)
//!     .management(&url)
//!     .with("activity: {enabled: true, interval: 300ms}");
//! let yaml = format!("tenants:\n{t}");
//! ```

use m365_exporter::simulator::{SIM_CLIENT_ID, SIM_CLIENT_SECRET, SIM_TENANT_ID};
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct SimTenant {
    name: String,
    tenant_id: String,
    credential: String,
    login: String,
    graph: String,
    management: Option<String>,
    keys: Vec<String>,
}

impl SimTenant {
    /// Tenant `name`: the simulator's identity and client secret, login
    /// and Graph at `url`.
    pub fn new(name: &str, url: &str) -> Self {
        SimTenant {
            name: name.into(),
            tenant_id: SIM_TENANT_ID.into(),
            credential: format!("client_secret: {SIM_CLIENT_SECRET}"),
            login: url.into(),
            graph: url.into(),
            management: None,
            keys: Vec::new(),
        }
    }

    /// Another tenant id (a simulator with `any_tenant` takes any).
    pub fn tenant_id(mut self, id: &str) -> Self {
        self.tenant_id = id.into();
        self
    }

    /// Another credential key instead of the client secret, e.g.
    /// `client_certificate_path: /x.pem` or `managed_identity: {}`.
    pub fn credential(mut self, line: &str) -> Self {
        self.credential = line.into();
        self
    }

    /// Graph at another address than login (e.g. one that never answers).
    pub fn graph(mut self, url: &str) -> Self {
        self.graph = url.into();
        self
    }

    /// The Management Activity API (the audit feed) at `url`.
    pub fn management(mut self, url: &str) -> Self {
        self.management = Some(url.into());
        self
    }

    /// One more key of the tenant, a YAML line such as
    /// `messages: {enabled: false}`.
    pub fn with(mut self, line: &str) -> Self {
        self.keys.push(line.into());
        self
    }

    /// `dir/config.yml` with this tenant alone, for a command that reads a
    /// configuration file (`report`, `check-config`, the binary).
    pub fn config_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("config.yml");
        std::fs::write(&path, format!("tenants:\n{self}")).expect("write config.yml");
        path
    }
}

impl fmt::Display for SimTenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  - name: {}", self.name)?;
        writeln!(f, "    tenant_id: {}", self.tenant_id)?;
        writeln!(f, "    client_id: {SIM_CLIENT_ID}")?;
        writeln!(f, "    {}", self.credential)?;
        write!(
            f,
            "    endpoints: {{login: \"{}\", graph: \"{}\"",
            self.login, self.graph
        )?;
        if let Some(m) = &self.management {
            write!(f, ", management: \"{m}\"")?;
        }
        writeln!(f, "}}")?;
        for k in &self.keys {
            writeln!(f, "    {k}")?;
        }
        Ok(())
    }
}
