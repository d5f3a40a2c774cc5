//! TUN/TAP devices and host network set-up for tunctl and uml_net.
