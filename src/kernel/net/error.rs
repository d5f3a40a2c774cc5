//! Why an `eth<N>=` device was refused or could not be opened: the
//! kernel's own texts, one variant each (the vector devices' are in
//! `vector::VectorError`, the UDP transports' in `udp::UdpError`).

use super::udp::UdpError;

/// A refused `eth<N>=` value.
#[derive(Debug, thiserror::Error)]
pub enum EthError {
    /// `tuntap` with more than three fields.
    #[error("tap_setup_common - Extra garbage on specification : '{extra}'")]
    TapExtraGarbage {
        /// The fields beyond the third, joined with commas.
        extra: String,
    },
    /// `tuntap,,MAC,GATEWAY` with a gateway that is no IPv4 address.
    #[error("Invalid tap IP address - '{text}'")]
    InvalidTapIp {
        /// The field as given.
        text: String,
    },
    /// `tuntap,DEV` with a name no interface can have.
    #[error("tuntap: bad host device name '{dev}'")]
    BadHostDevice {
        /// The name as given.
        dev: String,
    },
    /// `daemon` with a socket type other than `unix`.
    #[error("daemon_setup : Unknown socket type '{kind}'")]
    DaemonSocketType {
        /// The type as given.
        kind: String,
    },
    /// A bad `mcast`/`ucast` value.
    #[error(transparent)]
    Udp(#[from] UdpError),
    /// A transport Debian's kernel knows that this monitor does not serve.
    #[error("{name} transport is not supported by this linux; no device")]
    Unsupported {
        /// `ethertap`, `slirp`, `vde`, `slip` or `pcap`.
        name: String,
    },
}

/// Why `uml_net tuntap up` gave no TAP.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// The socket pair for the helper's answer.
    #[error("tuntap_open : socketpair failed, errno = {}", *.0 as i32)]
    Socketpair(nix::Error),
    /// The helper could not be run.
    #[error("tuntap_open : running {helper} failed, errno = {} ({source})", source.raw_os_error().unwrap_or(0))]
    Spawn {
        /// The program run.
        helper: &'static str,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// No TAP came back; `text` is what the helper said instead.
    #[error("{}", no_message(.text))]
    NoMessage {
        /// The helper's text (may be empty).
        text: String,
    },
}

fn no_message(text: &str) -> String {
    format!("tuntap_open_tramp : didn't receive a message\n{text}")
        .trim_end()
        .to_string()
}
