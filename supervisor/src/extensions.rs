//! What the service layer hangs on a supervisor without the engine knowing
//! it: typed values set while building (health checks, say), steps run when
//! the supervisor is built, and hooks run at the beginning and the end of a
//! shutdown (`STOPPING=1`, releasing the PID file).
//!
//! The engine imports nothing of the service layer; the service layer reads
//! these through the builder and the handle.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use crate::Error;

/// Something to do when a shutdown begins and once every unit has stopped.
pub(crate) trait ShutdownHook: Send + Sync + 'static {
    /// Called as the shutdown begins, before any unit is asked to stop.
    fn begin(&self) {}

    /// Awaited once every unit has stopped, before the report is handed out.
    fn end(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::ready(()))
    }

    /// Called instead of `end` when the supervisor's runtime was dropped
    /// before it ended: what can be done at once, on any thread, outside a
    /// runtime.
    fn end_without_runtime(&self) {}
}

/// A step of `build()`: it may refuse the build, or leave a hook for the
/// shutdown.
pub(crate) type BuildStep = Box<dyn FnOnce() -> Result<Option<Arc<dyn ShutdownHook>>, Error> + Send>;

/// Typed values, at most one per type, each created on first use. A value
/// that changes after it is created does so through its own interior
/// mutability.
#[derive(Default)]
pub(crate) struct Extensions {
    values: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Extensions {
    /// The value of type `T`, created with its default if there was none.
    pub(crate) fn get_or_default<T: Any + Default + Send + Sync>(&self) -> Arc<T> {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let value = values.entry(TypeId::of::<T>()).or_insert_with(|| Arc::new(T::default())).clone();
        value.downcast().unwrap_or_else(|_| unreachable!("values are stored under their own type id"))
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.values.lock().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("Extensions").field("values", &count).finish()
    }
}

/// The shutdown hooks of a running supervisor.
#[derive(Default)]
pub(crate) struct ShutdownHooks {
    hooks: Mutex<Vec<Arc<dyn ShutdownHook>>>,
}

impl ShutdownHooks {
    pub(crate) fn add(&self, hook: Arc<dyn ShutdownHook>) {
        self.lock().push(hook);
    }

    pub(crate) fn begin(&self) {
        for hook in self.snapshot() {
            hook.begin();
        }
    }

    pub(crate) async fn end(&self) {
        for hook in self.snapshot() {
            hook.end().await;
        }
    }

    /// Ends each hook without a runtime: the supervisor's is gone.
    pub(crate) fn end_without_runtime(&self) {
        for hook in self.snapshot() {
            hook.end_without_runtime();
        }
    }

    fn snapshot(&self) -> Vec<Arc<dyn ShutdownHook>> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<dyn ShutdownHook>>> {
        self.hooks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for ShutdownHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownHooks").field("hooks", &self.lock().len()).finish()
    }
}
