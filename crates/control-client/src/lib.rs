//! The HTTPS client every Cordon component uses to talk to the controller.
//!
//! It trusts either a CA certificate file (admins, who have `ca.pem`) or
//! exactly the CA whose SHA-256 fingerprint a join token carries (nodes on
//! first contact, as kubeadm's discovery hash does). It speaks HTTP/1.1 over
//! one connection per request and knows nothing of the API's routes.

mod client;
pub mod follow;
mod pin;

pub use client::{Client, ClientError, Trust};
pub use hyper::{Method, StatusCode};
pub use pin::fingerprint;
