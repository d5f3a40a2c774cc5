//! The guest kernel binary `linux`: a user-mode machine monitor.
