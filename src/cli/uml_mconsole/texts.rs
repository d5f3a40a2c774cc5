//! The original `uml_mconsole` client's fixed texts and limits (spec
//! §6.4, §6.5), which the session prints and tests compare against.

/// Text bytes one `log` request carries: `sizeof(data) - sizeof("log ") - 1`.
pub const LOG_CHUNK: usize = 512 - 5 - 1;

/// The original client's local help, printed after the guest's.
pub const LOCAL_HELP: &str = "Additional local mconsole commands:\n\
    \x20   quit - Quit mconsole\n\
    \x20   switch <socket-name> - Switch control to the given machine\n\
    \x20   log -f <filename> - use contents of <filename> as UML log messages\n\
    \x20   mconsole-version - version of this mconsole program\n\
    \x20   int  - Interrupt UML session\n";

/// What `mconsole-version` prints.
pub const CLIENT_VERSION: &str = "uml_mconsole client version 2\n";

/// The message printed by `int` when the guest's pid is unknown.
pub const NO_PID: &str = "Cannot determine the PID of your UML session, not sending signal.\n";
