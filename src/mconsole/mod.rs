//! The UML management console (mconsole) protocol and client.
