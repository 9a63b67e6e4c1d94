//! [`Signal`]: the signals a daemon can be stopped with.

use std::fmt;

/// A Unix signal, for [`DaemonSpec::stop_signal`](crate::DaemonSpec::stop_signal).
///
/// # Examples
///
/// ```
/// use supervisor::Signal;
///
/// assert_eq!(Signal::from_name("SIGINT"), Some(Signal::INT));
/// assert_eq!(Signal::from_name("TERM"), Some(Signal::TERM));
/// assert_eq!(Signal::from_name("SIGNOPE"), None);
/// assert_eq!(Signal::TERM.to_string(), "SIGTERM");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signal(rustix::process::Signal);

macro_rules! signals {
    ($($name:ident = $rustix:ident),* $(,)?) => {
        impl Signal {
            $(
                #[doc = concat!("`SIG", stringify!($name), "`.")]
                pub const $name: Signal = Signal(rustix::process::Signal::$rustix);
            )*

            const ALL: &'static [(&'static str, Signal)] = &[$((stringify!($name), Signal::$name)),*];
        }
    };
}

signals!(
    HUP = HUP,
    INT = INT,
    QUIT = QUIT,
    KILL = KILL,
    USR1 = USR1,
    USR2 = USR2,
    PIPE = PIPE,
    ALRM = ALARM,
    TERM = TERM,
    CHLD = CHILD,
    CONT = CONT,
    STOP = STOP,
    TSTP = TSTP,
    WINCH = WINCH,
);

impl std::hash::Hash for Signal {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.number().hash(state);
    }
}

impl Signal {
    /// Looks a signal up by name, with or without the `SIG` prefix
    /// (`"TERM"`, `"SIGTERM"`). Names are upper case, as in `kill -l`.
    ///
    /// ```
    /// use supervisor::Signal;
    ///
    /// assert_eq!(Signal::from_name("SIGHUP"), Some(Signal::HUP));
    /// assert_eq!(Signal::from_name("USR1"), Some(Signal::USR1));
    /// assert_eq!(Signal::from_name("term"), None);
    /// assert_eq!(Signal::from_name("SIGRTMIN"), None); // not one of the constants
    /// ```
    #[must_use]
    pub fn from_name(name: &str) -> Option<Signal> {
        let bare = name.strip_prefix("SIG").unwrap_or(name);
        Self::ALL.iter().find(|(known, _)| *known == bare).map(|(_, signal)| *signal)
    }

    /// The signal's number on this platform, as in
    /// [`UnitStatus::signal`](crate::UnitStatus::signal).
    ///
    /// ```
    /// use supervisor::Signal;
    ///
    /// assert_eq!(Signal::KILL.number(), 9);
    /// assert_eq!(Signal::TERM.number(), 15);
    /// ```
    #[must_use]
    pub fn number(self) -> i32 {
        self.0.as_raw()
    }

    /// The name without the `SIG` prefix, e.g. `"TERM"`; `Display` adds the
    /// prefix.
    ///
    /// ```
    /// use supervisor::Signal;
    ///
    /// assert_eq!(Signal::INT.name(), "INT");
    /// assert_eq!(Signal::INT.to_string(), "SIGINT");
    /// assert_eq!(Signal::from_name(Signal::WINCH.name()), Some(Signal::WINCH));
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, signal)| *signal == self).map_or("?", |(name, _)| name)
    }

    pub(crate) fn to_rustix(self) -> rustix::process::Signal {
        self.0
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}({})", self.name(), self.number())
    }
}
