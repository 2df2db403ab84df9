//! The netmap long-poll: answer at once when the member's netmap moved past
//! the version the node has, else wait (bounded) until a change affects it.
//! Under churn, answers to a poller that is up to date are paced
//! ([`crate::hub::MIN_INTERVAL`]).

use std::time::Duration;

use proto::api::Topology;
use proto::{Name, Netmap};
use tokio::time::Instant;

use crate::controller::Controller;
use crate::error::{Error, Result};

/// Longest a long-poll waits.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

enum Now {
    Newer(Box<Netmap>),
    Same,
    Gone,
}

fn check(ctl: &Controller, member: i64, since: u64) -> Now {
    let reg = ctl.registry();
    let Some(view) = reg.enclave_of(member) else {
        return Now::Gone;
    };
    match view.netmap_version(member) {
        None => Now::Gone,
        Some(v) if v > since => view
            .netmap(member)
            .map_or(Now::Gone, |n| Now::Newer(Box::new(n))),
        Some(_) => Now::Same,
    }
}

/// The member's netmap once its version exceeds `since`, or `None` after
/// `wait` without a change.
///
/// # Errors
/// [`Error::Unauthorized`] once the member is removed (also while waiting).
pub async fn wait(
    ctl: &Controller,
    member: i64,
    since: u64,
    wait: Duration,
) -> Result<Option<Netmap>> {
    let deadline = Instant::now() + wait.min(MAX_WAIT);
    // Subscribe before checking, so a change between the check and the
    // wait still wakes us.
    let mut rx = ctl.hub.subscribe(member);
    ctl.metrics.waiters.inc();
    let _gauge = WaiterGauge(ctl);
    // The member authenticated against storage, so if this replica's model
    // does not know it yet, the model lags (a join through another replica
    // a moment ago): catch up before calling it gone.
    let mut now = check(ctl, member, since);
    if matches!(now, Now::Gone) {
        ctl.replay().await?;
        now = check(ctl, member, since);
    }
    loop {
        match now {
            Now::Newer(n) => match ctl.hub.hold(member, since) {
                // Up to date a moment ago: let the burst settle, then send
                // the latest.
                Some(d) => {
                    tokio::time::sleep(d).await;
                    now = check(ctl, member, since);
                    continue;
                }
                None => {
                    ctl.hub.delivered(member, n.version);
                    return Ok(Some(*n));
                }
            },
            Now::Gone => return Err(Error::Unauthorized),
            Now::Same => {}
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Err(_) => return Ok(None),
            Ok(Ok(())) => now = check(ctl, member, since),
            // The member's channel was dropped: it was removed.
            Ok(Err(_)) => {
                return match check(ctl, member, since) {
                    Now::Newer(n) => Ok(Some(*n)),
                    _ => Err(Error::Unauthorized),
                }
            }
        }
    }
}

struct WaiterGauge<'a>(&'a Controller);

impl Drop for WaiterGauge<'_> {
    fn drop(&mut self) {
        self.0.metrics.waiters.dec();
    }
}

/// Who can reach whom in an enclave.
///
/// # Errors
/// [`Error::NotFound`].
pub async fn topology(ctl: &Controller, enclave: &Name) -> Result<Topology> {
    ctl.replay().await?;
    let reg = ctl.registry();
    let view = reg
        .by_name(enclave)
        .ok_or_else(|| Error::NotFound(format!("enclave {enclave}")))?;
    Ok(Topology {
        enclave: enclave.clone(),
        version: view.version,
        members: view.topology(),
    })
}
