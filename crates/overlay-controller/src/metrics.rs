//! Prometheus metrics, served on `--metrics-listen`.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The matched route template, e.g. `/api/v1/enclaves/{name}`.
    pub route: String,
    /// The HTTP status code.
    pub status: u16,
}

/// Every metric the controller exports.
pub struct Metrics {
    registry: Registry,
    /// Enclaves known.
    pub enclaves: Gauge,
    /// Members across all enclaves.
    pub members: Gauge,
    /// Long-polls currently waiting.
    pub waiters: Gauge,
    /// Change-log entries applied to the in-memory registry.
    pub changes_applied: Counter,
    /// Successful joins.
    pub joins: Counter,
    /// Requests refused for missing or invalid credentials.
    pub auth_failures: Counter,
    /// HTTP requests by route and status.
    pub requests: Family<RequestLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("cordon_controller");
        let m = Self {
            enclaves: Gauge::default(),
            members: Gauge::default(),
            waiters: Gauge::default(),
            changes_applied: Counter::default(),
            joins: Counter::default(),
            auth_failures: Counter::default(),
            requests: Family::default(),
            registry: Registry::default(),
        };
        registry.register("enclaves", "Enclaves known", m.enclaves.clone());
        registry.register("members", "Members in all enclaves", m.members.clone());
        registry.register(
            "netmap_waiters",
            "Netmap long-polls waiting",
            m.waiters.clone(),
        );
        registry.register(
            "changes_applied",
            "Change-log entries applied",
            m.changes_applied.clone(),
        );
        registry.register("joins", "Successful joins", m.joins.clone());
        registry.register(
            "auth_failures",
            "Requests with missing or invalid credentials",
            m.auth_failures.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            m.requests.clone(),
        );
        Self { registry, ..m }
    }
}

impl Metrics {
    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_counters() {
        let m = Metrics::default();
        m.joins.inc();
        m.requests
            .get_or_create(&RequestLabels {
                route: "/healthz".into(),
                status: 200,
            })
            .inc();
        let text = m.encode();
        assert!(text.contains("cordon_controller_joins_total 1"), "{text}");
        assert!(text.contains("route=\"/healthz\""), "{text}");
    }
}
