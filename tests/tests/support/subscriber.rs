//! A `tracing` subscriber for one test's thread that sees every line of
//! the supervisor's, whatever the tests running beside it do.

use tracing::Dispatch;
use tracing::subscriber::DefaultGuard;

/// `subscriber` as this thread's default, while it is kept.
pub(crate) struct ThreadSubscriber {
    _default: DefaultGuard,
    _anchor: Dispatch,
}

/// Sets `subscriber` as this thread's default until the returned guard is
/// dropped. tracing caches each callsite's interest for the whole process;
/// a second dispatcher, kept as long, makes it ask this thread's subscriber
/// too, so that a test on another thread cannot have the lines cached as
/// unwanted.
pub(crate) fn on_this_thread(subscriber: impl tracing::Subscriber + Send + Sync + 'static) -> ThreadSubscriber {
    let anchor = Dispatch::new(tracing_subscriber::registry());
    ThreadSubscriber { _default: tracing::subscriber::set_default(subscriber), _anchor: anchor }
}
