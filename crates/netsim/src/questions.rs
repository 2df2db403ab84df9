//! The buyer's five questions, answered from figures the demos measured.
//! Each answer is a pure function of its evidence, so a test can show that
//! a bad figure turns it into a FAIL.

use serde::Serialize;

/// The longest a removed member may keep access, on the data plane or at
/// the ASC, for question 5 to pass.
pub const CUTOFF_LIMIT_MS: u64 = 5_000;

/// One line of the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What is asked or checked.
    pub name: String,
    /// Whether it holds.
    pub pass: bool,
    /// The figures behind it.
    pub evidence: String,
}

impl Check {
    /// A check from its parts.
    pub fn new(name: &str, pass: bool, evidence: String) -> Self {
        Self {
            name: name.to_owned(),
            pass,
            evidence,
        }
    }

    /// `PASS  name` and the evidence on the next line.
    pub fn line(&self) -> String {
        format!(
            "{}  {}\n      {}",
            if self.pass { "PASS" } else { "FAIL" },
            self.name,
            self.evidence
        )
    }
}

/// Question 1: the controller was stopped while established peers kept
/// talking.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outage {
    /// How long the controller was down, seconds.
    pub down_s: f64,
    /// Probes that the model expects to pass, sent while it was down.
    pub probes: usize,
    /// Of those, how many failed.
    pub lost: usize,
    /// Probes expected to fail that passed while it was down.
    pub breaches: usize,
    /// Seconds from the controller's return until a change made then
    /// reached every node (`None`: it did not).
    pub change_after_return_s: Option<f64>,
}

/// Question 2: the agent's code is hostile.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Boundary {
    /// Attack scenarios run from inside sandboxes and hosts.
    pub attacks: usize,
    /// Of those, contained.
    pub contained: usize,
    /// Unexpected results in the reachability matrix.
    pub unexpected: usize,
    /// Whether the sandboxed agent failed to reach the provider directly.
    pub upstream_unreachable: bool,
}

/// Question 3: where the real keys were found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Keys {
    /// Real-key occurrences in the sandbox's environment.
    pub in_sandbox_env: usize,
    /// Real-key occurrences in the agent's state dir and output.
    pub in_agent_files: usize,
    /// Real-key occurrences in the session log and the ASC's own log.
    pub in_gateway_logs: usize,
    /// Requests that reached the provider carrying a substitute key.
    pub substitute_at_upstream: usize,
    /// Requests that reached the provider with the real key.
    pub real_at_upstream: usize,
    /// Requests that reached the provider.
    pub upstream_requests: usize,
}

/// Question 4: the session log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Audit {
    /// Records in the log.
    pub records: usize,
    /// Whether its hash chain verified.
    pub verified: bool,
    /// Whether the full prompt of the allowed request is in it.
    pub prompt_logged: bool,
    /// Whether the blocked tool call is in it with its name.
    pub tool_call_logged: bool,
    /// Where the log is (a local file).
    pub path: String,
}

/// Question 5: `member remove`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Decommission {
    /// Milliseconds until the member's overlay traffic stopped.
    pub data_plane_ms: Option<u64>,
    /// Milliseconds until the ASC stopped accepting its substitute key.
    pub asc_ms: Option<u64>,
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "never".to_owned(), |m| format!("{m} ms"))
}

/// (1) What happens when the controller is unavailable?
pub fn q1(o: &Outage) -> Check {
    let pass = o.probes > 0 && o.lost == 0 && o.breaches == 0 && o.change_after_return_s.is_some();
    Check::new(
        "1. Controller unavailable: established peers keep working",
        pass,
        format!(
            "controller down {:.0} s: {} expected probes, {} lost, {} breaches; a change after its return reached every node in {}",
            o.down_s,
            o.probes,
            o.lost,
            o.breaches,
            o.change_after_return_s
                .map_or_else(|| "never".to_owned(), |s| format!("{s:.1} s"))
        ),
    )
}

/// (2) Does the boundary hold if the agent's code is modified?
pub fn q2(b: &Boundary) -> Check {
    let pass =
        b.attacks > 0 && b.contained == b.attacks && b.unexpected == 0 && b.upstream_unreachable;
    Check::new(
        "2. Modified agent code: the boundary holds",
        pass,
        format!(
            "{} of {} attacks contained; {} unexpected reachability results; sandboxed agent {} the provider directly",
            b.contained,
            b.attacks,
            b.unexpected,
            if b.upstream_unreachable { "cannot reach" } else { "REACHED" }
        ),
    )
}

/// (3) Do enterprise API keys ever reach the endpoint (the agent)?
pub fn q3(k: &Keys) -> Check {
    let outside = k.in_sandbox_env + k.in_agent_files + k.in_gateway_logs;
    let pass = outside == 0
        && k.substitute_at_upstream == 0
        && k.upstream_requests > 0
        && k.real_at_upstream == k.upstream_requests;
    Check::new(
        "3. Enterprise API keys never reach the agent",
        pass,
        format!(
            "real-key occurrences outside the vault and the gateway's memory: {outside} \
             (sandbox env {}, agent files {}, logs {}); provider saw the real key on {} of {} requests, a substitute key on {}",
            k.in_sandbox_env,
            k.in_agent_files,
            k.in_gateway_logs,
            k.real_at_upstream,
            k.upstream_requests,
            k.substitute_at_upstream
        ),
    )
}

/// (4) Does the audit trail hold full prompts and tool payloads, on premises?
pub fn q4(a: &Audit) -> Check {
    let pass = a.records > 0 && a.verified && a.prompt_logged && a.tool_call_logged;
    Check::new(
        "4. Audit trail: full prompts and tool payloads, on premises",
        pass,
        format!(
            "{} records in {}, hash chain {}; full prompt {}; blocked tool call {}",
            a.records,
            a.path,
            if a.verified { "verified" } else { "BROKEN" },
            if a.prompt_logged { "logged" } else { "MISSING" },
            if a.tool_call_logged {
                "logged"
            } else {
                "MISSING"
            }
        ),
    )
}

/// (5) Is decommissioning one operation?
pub fn q5(d: &Decommission) -> Check {
    let within = |v: Option<u64>| v.is_some_and(|m| m <= CUTOFF_LIMIT_MS);
    let pass = within(d.data_plane_ms) && within(d.asc_ms);
    Check::new(
        "5. Decommissioning is one operation",
        pass,
        format!(
            "one `member remove`: overlay traffic cut after {}, ASC refused the agent after {} (limit {CUTOFF_LIMIT_MS} ms)",
            ms(d.data_plane_ms),
            ms(d.asc_ms)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good_outage() -> Outage {
        Outage {
            down_s: 10.0,
            probes: 12,
            lost: 0,
            breaches: 0,
            change_after_return_s: Some(0.4),
        }
    }

    fn good_keys() -> Keys {
        Keys {
            real_at_upstream: 3,
            upstream_requests: 3,
            ..Keys::default()
        }
    }

    fn good_audit() -> Audit {
        Audit {
            records: 8,
            verified: true,
            prompt_logged: true,
            tool_call_logged: true,
            path: "/x/asc-log.db".into(),
        }
    }

    #[test]
    fn good_figures_pass() {
        assert!(q1(&good_outage()).pass);
        assert!(
            q2(&Boundary {
                attacks: 9,
                contained: 9,
                unexpected: 0,
                upstream_unreachable: true
            })
            .pass
        );
        assert!(q3(&good_keys()).pass);
        assert!(q4(&good_audit()).pass);
        assert!(
            q5(&Decommission {
                data_plane_ms: Some(300),
                asc_ms: Some(40)
            })
            .pass
        );
    }

    #[test]
    fn each_answer_fails_on_a_bad_figure() {
        for o in [
            Outage {
                lost: 1,
                ..good_outage()
            },
            Outage {
                breaches: 1,
                ..good_outage()
            },
            Outage {
                probes: 0,
                ..good_outage()
            },
            Outage {
                change_after_return_s: None,
                ..good_outage()
            },
        ] {
            assert!(!q1(&o).pass, "{o:?}");
        }
        let b = Boundary {
            attacks: 9,
            contained: 9,
            unexpected: 0,
            upstream_unreachable: true,
        };
        for bad in [
            Boundary {
                contained: 8,
                ..b.clone()
            },
            Boundary {
                unexpected: 1,
                ..b.clone()
            },
            Boundary {
                upstream_unreachable: false,
                ..b.clone()
            },
            Boundary {
                attacks: 0,
                contained: 0,
                ..b
            },
        ] {
            assert!(!q2(&bad).pass, "{bad:?}");
        }
        for k in [
            Keys {
                in_sandbox_env: 1,
                ..good_keys()
            },
            Keys {
                in_agent_files: 1,
                ..good_keys()
            },
            Keys {
                in_gateway_logs: 1,
                ..good_keys()
            },
            Keys {
                substitute_at_upstream: 1,
                ..good_keys()
            },
            Keys {
                real_at_upstream: 2,
                ..good_keys()
            },
            Keys::default(),
        ] {
            assert!(!q3(&k).pass, "{k:?}");
        }
        for a in [
            Audit {
                verified: false,
                ..good_audit()
            },
            Audit {
                prompt_logged: false,
                ..good_audit()
            },
            Audit {
                tool_call_logged: false,
                ..good_audit()
            },
            Audit {
                records: 0,
                ..good_audit()
            },
        ] {
            assert!(!q4(&a).pass, "{a:?}");
        }
        for d in [
            Decommission {
                data_plane_ms: None,
                asc_ms: Some(1),
            },
            Decommission {
                data_plane_ms: Some(1),
                asc_ms: None,
            },
            Decommission {
                data_plane_ms: Some(CUTOFF_LIMIT_MS + 1),
                asc_ms: Some(1),
            },
        ] {
            assert!(!q5(&d).pass, "{d:?}");
        }
    }

    #[test]
    fn a_line_says_pass_or_fail_and_shows_the_figures() {
        let c = q3(&Keys {
            in_sandbox_env: 1,
            ..good_keys()
        });
        assert!(c.line().starts_with("FAIL  3."));
        assert!(c.line().contains("sandbox env 1"));
    }
}
