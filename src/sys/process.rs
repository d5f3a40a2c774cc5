//! Process-wide signal dispositions.

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// Restores the default action of `sig`, so that raising it kills the
/// process even when the parent started us with it ignored (as a shell
/// does for background jobs).
pub fn default_action(sig: Signal) -> nix::Result<()> {
    let action = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_DFL runs no code of ours in signal context, so
    // none of sigaction's handler-safety requirements apply.
    unsafe { sigaction(sig, &action) }.map(|_| ())
}
