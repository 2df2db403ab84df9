//! A controller that answers garbage or never answers: the node reports it
//! clearly, never hangs on join, and its follower keeps retrying (the data
//! plane keeps the last netmap meanwhile) until stopped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use control_client::{Client, Trust};
use overlay_controller::pki::Pki;
use overlay_node::control::{self, ControlError, Update};
use proto::{JoinToken, PublicKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy)]
enum Mode {
    Garbage,
    Hang,
}

/// A TLS server with a real controller certificate that misbehaves.
async fn fake(mode: Mode) -> Result<(String, String, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let pki = Pki::load_or_create(dir.path(), &["127.0.0.1".to_owned()])?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("https://{}", listener.local_addr()?);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&pki.server_config));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let _ = tls.read(&mut buf).await;
                match mode {
                    Mode::Garbage => {
                        let _ = tls
                            .write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-length: 17\r\n\r\n<html>oops</html>",
                            )
                            .await;
                        let _ = tls.shutdown().await;
                    }
                    Mode::Hang => tokio::time::sleep(Duration::from_secs(60)).await,
                }
            });
        }
    });
    Ok((url, pki.ca_sha256, dir))
}

fn token(url: &str, ca: &str) -> String {
    JoinToken {
        controller: url.to_owned(),
        ca_sha256: ca.to_owned(),
        id: "abcdefgh".into(),
        secret: "s3cr3t-s3cr3t-s3cr3t".into(),
    }
    .encode()
}

#[tokio::test]
async fn join_against_garbage_and_a_silent_controller_fails_clearly() -> Result<()> {
    let key = PublicKey::from_bytes([9u8; 32]);
    let (url, ca, _d) = fake(Mode::Garbage).await?;
    let err =
        control::join_within(&token(&url, &ca), key, None, None, Duration::from_secs(5)).await;
    assert!(matches!(err, Err(ControlError::Garbage(_))), "{err:?}");

    let (url, ca, _d2) = fake(Mode::Hang).await?;
    let t = Instant::now();
    let err = control::join_within(
        &token(&url, &ca),
        key,
        None,
        None,
        Duration::from_millis(500),
    )
    .await;
    assert!(matches!(err, Err(ControlError::Timeout(_))), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
    Ok(())
}

#[tokio::test]
async fn the_follower_keeps_retrying_and_stops_when_told() -> Result<()> {
    for mode in [Mode::Garbage, Mode::Hang] {
        let (url, ca, _d) = fake(mode).await?;
        let client = Client::with_trust(&url, Trust::Pinned(ca), Some("cn1.x.y".into()))?;
        let (tx, mut rx) = mpsc::channel(4);
        let stop = CancellationToken::new();
        let task = tokio::spawn(control::follow_within(
            client,
            3,
            tx,
            stop.clone(),
            Duration::from_millis(300),
        ));
        // Garbage is never taken for a netmap or a revocation.
        let got = tokio::time::timeout(Duration::from_millis(1500), rx.recv()).await;
        assert!(
            got.is_err(),
            "an update came from a broken controller: {:?}",
            got.ok().flatten().map(|u| matches!(u, Update::Revoked))
        );
        assert!(!task.is_finished(), "the follower gave up");
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(2), task).await??;
    }
    Ok(())
}
