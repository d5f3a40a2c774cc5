//! The virtual switch (uml_switch): control protocol, forwarding core and daemon.
