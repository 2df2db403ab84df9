//! Following a member's netmap by long-poll, retrying with backoff while
//! the controller is away: what a node runs to keep its peers current and
//! what a gateway's ASC runs to learn of member changes at once.

use std::time::Duration;

use hyper::{Method, StatusCode};
use proto::Netmap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Client;

/// How long one netmap long-poll may take (the controller holds it 25 s).
pub const POLL_TIMEOUT: Duration = Duration::from_secs(40);

/// What the netmap follower reports.
#[derive(Debug)]
pub enum Update {
    /// A newer netmap.
    Netmap(Box<Netmap>),
    /// The controller no longer knows this member: it was removed.
    Revoked,
}

/// Long-polls the netmap from `since` on and sends each newer one to `tx`,
/// until revoked or cancelled. Network errors and garbage are retried with
/// exponential backoff (100 ms to 10 s); the node keeps forwarding with the
/// netmap it has meanwhile.
pub async fn follow(client: Client, since: u64, tx: mpsc::Sender<Update>, stop: CancellationToken) {
    follow_within(client, since, tx, stop, POLL_TIMEOUT).await;
}

/// [`follow`] with another time limit per long-poll.
pub async fn follow_within(
    client: Client,
    mut since: u64,
    tx: mpsc::Sender<Update>,
    stop: CancellationToken,
    limit: Duration,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let path = format!("/api/v1/node/netmap?since={since}&timeout=25");
        let res = tokio::select! {
            () = stop.cancelled() => return,
            r = tokio::time::timeout(limit, client.send(Method::GET, &path, None)) => r,
        };
        let failure = match res {
            Ok(Ok((StatusCode::OK, body))) => match serde_json::from_slice::<Netmap>(&body) {
                Ok(map) if map.version > since => {
                    since = map.version;
                    backoff = Duration::from_millis(100);
                    if tx.send(Update::Netmap(Box::new(map))).await.is_err() {
                        return;
                    }
                    continue;
                }
                Ok(_) => "a netmap that is not newer".to_owned(),
                Err(e) => format!("an unreadable netmap: {e}"),
            },
            Ok(Ok((StatusCode::NO_CONTENT, _))) => {
                backoff = Duration::from_millis(100);
                continue;
            }
            Ok(Ok((StatusCode::UNAUTHORIZED, _))) => {
                let _ = tx.send(Update::Revoked).await;
                return;
            }
            Ok(Ok((status, _))) => format!("status {status}"),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {limit:?}"),
        };
        tracing::warn!(reason = %failure, retry_in = ?backoff, "netmap poll failed; keeping the last netmap");
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}
