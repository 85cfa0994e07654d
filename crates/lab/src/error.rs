use std::fmt;

/// What went wrong, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Something to install or run first (not root, FRR missing, ...).
    Precondition(String),
    /// A lab with this prefix exists already.
    AlreadyUp(String),
    /// No lab is up (no state file).
    NotUp(String),
    /// The configuration could not be loaded or turned into a router configuration.
    Config(String),
    /// Building or driving the network failed.
    Setup(String),
    /// Unknown node name (fail/heal).
    NoSuchNode(String),
    /// The demo ran; these checks failed.
    Checks(Vec<String>),
}

impl std::error::Error for Error {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Precondition(m)
            | Error::AlreadyUp(m)
            | Error::NotUp(m)
            | Error::Config(m)
            | Error::Setup(m)
            | Error::NoSuchNode(m) => f.write_str(m),
            Error::Checks(failed) => {
                write!(f, "{} check(s) failed:", failed.len())?;
                for check in failed {
                    write!(f, "\n  - {check}")?;
                }
                Ok(())
            }
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Setup(e.to_string())
    }
}
