//! The problem board: what is wrong with one tenant's feed, and the rule
//! that an operator hears of each change once. Stages put their findings
//! here (a content type's listing, a failed call, a feed-wide problem such
//! as `download`, `state_file` or `<type> webhook`); the feed publishes
//! them in its status, and [`Board::report`] logs one line per change of a
//! problem (grouped when several scopes share it) and one when they recover.

use super::problem::Problem;
use std::collections::BTreeMap;

/// How one content type is doing.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TypeHealth {
    /// Its last poll listed it completely.
    pub listed_ok: bool,
    /// Why its last listing failed, if it did.
    pub list_problem: Option<Problem>,
    /// Unix time of its last failed call (subscriptions, listing, download).
    pub last_error: Option<i64>,
}

#[derive(Debug)]
pub struct Board {
    tenant: String,
    types: BTreeMap<String, TypeHealth>,
    /// Problems of the feed as a whole, by scope.
    scopes: BTreeMap<String, Problem>,
    /// Problems as last logged.
    reported: BTreeMap<String, Problem>,
}

/// What [`Board::report`] logs: new or changed problems (their description
/// and the scopes sharing it), and the scopes that recovered.
#[derive(Debug, Default, PartialEq)]
struct Changes {
    raised: BTreeMap<String, Vec<String>>,
    recovered: Vec<String>,
}

impl Board {
    pub fn new(tenant: &str) -> Board {
        Board {
            tenant: tenant.to_string(),
            types: BTreeMap::new(),
            scopes: BTreeMap::new(),
            reported: BTreeMap::new(),
        }
    }

    fn health_mut(&mut self, ct: &str) -> &mut TypeHealth {
        if !self.types.contains_key(ct) {
            self.types.insert(ct.to_string(), TypeHealth::default());
        }
        self.types.get_mut(ct).expect("inserted above when missing")
    }

    /// A call for `ct` failed at `now`.
    pub fn failed(&mut self, ct: &str, now: i64) {
        self.health_mut(ct).last_error = Some(now);
    }

    /// How this poll's listing of `ct` went (an `Err` failed at `now`).
    pub fn listed(&mut self, ct: &str, result: Result<(), Problem>, now: i64) {
        let h = self.health_mut(ct);
        h.listed_ok = result.is_ok();
        if result.is_err() {
            h.last_error = Some(now);
        }
        h.list_problem = result.err();
    }

    /// `ct` was due but not listed (its subscription is not enabled).
    pub fn not_listed(&mut self, ct: &str) {
        self.health_mut(ct).listed_ok = false;
    }

    /// Raise (`Some`) or clear (`None`) a problem of the feed as a whole.
    pub fn set(&mut self, scope: &str, problem: Option<Problem>) {
        match problem {
            Some(p) => self.scopes.insert(scope.to_string(), p),
            None => self.scopes.remove(scope),
        };
    }

    pub fn health(&self, ct: &str) -> Option<&TypeHealth> {
        self.types.get(ct)
    }

    pub fn scopes(&self) -> &BTreeMap<String, Problem> {
        &self.scopes
    }

    /// Log what changed since the last report; `problems` is every problem
    /// now, by content type or scope (`FeedStatus::problems`).
    pub fn report(&mut self, problems: BTreeMap<String, Problem>) {
        let c = self.changes(&problems);
        for (what, scopes) in c.raised {
            tracing::error!(tenant = %self.tenant, collector = "activity", content_types = %scopes.join(","), "{what}");
        }
        if !c.recovered.is_empty() {
            tracing::info!(tenant = %self.tenant, collector = "activity", content_types = %c.recovered.join(","), "activity feed recovered");
        }
        self.reported = problems;
    }

    fn changes(&self, problems: &BTreeMap<String, Problem>) -> Changes {
        let mut c = Changes::default();
        // Both maps are sorted: walk their union in order.
        let mut scopes: Vec<&String> = problems.keys().chain(self.reported.keys()).collect();
        scopes.sort();
        scopes.dedup();
        for scope in scopes {
            match (self.reported.get(scope), problems.get(scope)) {
                (old, Some(new)) if old != Some(new) => c
                    .raised
                    .entry(new.describe())
                    .or_default()
                    .push(scope.clone()),
                (Some(_), None) => c.recovered.push(scope.clone()),
                _ => {}
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(list: &[(&str, Problem)]) -> BTreeMap<String, Problem> {
        list.iter()
            .map(|(k, p)| (k.to_string(), p.clone()))
            .collect()
    }

    #[test]
    fn each_change_is_reported_once_grouped_by_problem() {
        let mut b = Board::new("t");
        let off = Problem::MissingPermission;
        let now = problems(&[("DLP.All", off.clone()), ("Audit.General", off.clone())]);
        let c = b.changes(&now);
        assert_eq!(
            c.raised,
            BTreeMap::from([(
                off.describe(),
                vec!["Audit.General".to_string(), "DLP.All".to_string()]
            )])
        );
        assert!(c.recovered.is_empty());
        b.report(now.clone());
        assert_eq!(b.changes(&now), Changes::default(), "logged once");
        // One changes its reason, the other recovers.
        let later = problems(&[("DLP.All", Problem::NotSubscribed)]);
        let c = b.changes(&later);
        assert_eq!(c.raised.len(), 1);
        assert_eq!(c.raised[&Problem::NotSubscribed.describe()], ["DLP.All"]);
        assert_eq!(c.recovered, ["Audit.General"]);
        b.report(later);
        assert_eq!(b.changes(&BTreeMap::new()).recovered, ["DLP.All"]);
    }

    #[test]
    fn listing_results_and_failures_per_type() {
        let mut b = Board::new("t");
        assert_eq!(b.health("Audit.Exchange"), None);
        b.listed("Audit.Exchange", Ok(()), 10);
        assert_eq!(
            b.health("Audit.Exchange"),
            Some(&TypeHealth {
                listed_ok: true,
                ..TypeHealth::default()
            })
        );
        b.listed("Audit.Exchange", Err(Problem::NotSubscribed), 11);
        let h = b.health("Audit.Exchange").unwrap().clone();
        assert!(!h.listed_ok);
        assert_eq!(h.list_problem, Some(Problem::NotSubscribed));
        assert_eq!(h.last_error, Some(11));
        b.failed("Audit.Exchange", 12);
        b.listed("Audit.Exchange", Ok(()), 13);
        let h = b.health("Audit.Exchange").unwrap();
        assert!(h.listed_ok && h.list_problem.is_none());
        assert_eq!(
            h.last_error,
            Some(12),
            "a success keeps the last error's time"
        );
        b.not_listed("Audit.Exchange");
        assert!(!b.health("Audit.Exchange").unwrap().listed_ok);

        b.set("download", Some(Problem::Failed("stuck".into())));
        assert_eq!(b.scopes().len(), 1);
        b.set("download", None);
        assert!(b.scopes().is_empty());
    }
}
