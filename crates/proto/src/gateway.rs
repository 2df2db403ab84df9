//! Where an enclave's ASC listens on its gateway member, so that agents'
//! nodes can point SDKs at it without configuration.

/// Port of the ASC's reverse proxy (`/openai/…`, `/anthropic/…`, …) on the
/// gateway's overlay address. Plain HTTP: the overlay already encrypts and
/// authenticates.
pub const REVERSE_PORT: u16 = 8080;

/// Port of the ASC's forward proxy (`HTTPS_PROXY`) on the gateway's overlay
/// address.
pub const FORWARD_PORT: u16 = 3128;

/// Path on the reverse proxy that serves the enclave's interception CA
/// certificate (public; fetched over the overlay, whose cryptokey routing
/// already proves it comes from the gateway member).
pub const CA_PATH: &str = "/cordon/ca.pem";
