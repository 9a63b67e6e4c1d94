//! The supervision tree: units, the groups that own them, and the pure
//! rules their owners follow (strategy, intensity).

pub(crate) mod batches;
pub(crate) mod build;
pub(crate) mod clock;
pub(crate) mod graph;
pub(crate) mod intensity;
pub(crate) mod launch;
pub(crate) mod members;
pub(crate) mod node;
pub(crate) mod order;
pub(crate) mod paths;
pub(crate) mod record;
pub(crate) mod round;
pub(crate) mod shared;
pub(crate) mod stop_gate;
pub(crate) mod strategy;
pub(crate) mod timers;
pub(crate) mod unit;
pub(crate) mod waiting;
