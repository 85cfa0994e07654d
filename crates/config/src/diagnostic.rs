//! Errors and warnings about a configuration, each naming where (file, document, line),
//! which object (kind/name), which field, the bad value and what would be valid.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// Where an object came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The file, or `None` for objects that did not come from a file (API server, tests).
    pub file: Option<PathBuf>,
    /// 1-based index of the YAML document in the file.
    pub document: Option<usize>,
    /// 1-based line where the document (or the legacy entry) starts, when known.
    pub line: Option<usize>,
    /// The Kubernetes namespace of an object read from the API server (no file): a
    /// diagnostic then names the object as `Kind "name" (namespace NS)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl Origin {
    /// An object read from the API server, in this namespace.
    pub fn api(namespace: Option<&str>) -> Origin {
        Origin {
            namespace: namespace.map(str::to_string),
            ..Origin::default()
        }
    }

    /// Whether there is a place to show (a file or a line): objects from the API have
    /// none, their kind, namespace, name and field say which one is meant.
    pub fn is_located(&self) -> bool {
        self.file.is_some() || self.line.is_some() || self.document.is_some()
    }

    /// ` (at FILE:LINE)` for a located origin, empty for an object from the API.
    pub fn at_suffix(&self) -> String {
        if self.is_located() {
            format!(" (at {self})")
        } else {
            String::new()
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, &self.namespace) {
            (Some(file), _) => write!(f, "{}", file.display())?,
            (None, Some(namespace)) => write!(f, "namespace {namespace}")?,
            (None, None) => write!(f, "<input>")?,
        }
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(document) = self.document {
            write!(f, " (document {document})")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// What is wrong, as a stable machine-readable code (used by tests and `-o json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    // Loading.
    Io,
    TooLarge,
    Yaml,
    NotAnObject,
    UnknownKind,
    WrongType,
    MissingField,
    UnknownField,
    OtherNamespace,
    // Names and references.
    InvalidName,
    DuplicateName,
    /// The same entry twice in one list (a pool, peer, community, namespace or selector).
    DuplicateEntry,
    /// A newline or carriage return in a value that ends up in a routing daemon's config.
    InvalidCharacters,
    UnknownPool,
    UnknownPeer,
    UnknownBfdProfile,
    UnknownCommunity,
    UnknownSecret,
    SecretKeyMissing,
    SecretType,
    // Addresses.
    NoAddresses,
    InvalidAddress,
    RangeStartAfterEnd,
    MixedFamilyRange,
    Overlap,
    // BGP.
    InvalidAsn,
    AsnChoice,
    AddressChoice,
    InvalidDuration,
    HoldTime,
    KeepaliveTime,
    ConnectTime,
    InvalidPort,
    MultiHopIbgp,
    PasswordBoth,
    DuplicatePeer,
    /// `vrf` on a BGPPeer: the session runs inside that VRF; replies to clients that
    /// came in through it leave through it only if the host is set up for it
    /// (docs/vrf.md), which oxlb cannot check from the configuration.
    VrfReturnTraffic,
    AggregationLength,
    LocalPrefConflict,
    InvalidCommunity,
    // BFD.
    BfdRange,
    /// BFD echo mode on a peer it cannot run on: an `interface` or IPv6 link-local peer
    /// (routers do not forward link-local sources, RFC 4291 §2.5.6); the session runs
    /// asynchronous mode.
    BfdEchoUnsupported,
    /// BFD echo mode on an `ebgpMultiHop` peer: RFC 5883 §3 has no Echo on multihop
    /// sessions (MetalLB accepts it and FRR ignores it; here the session runs
    /// asynchronous mode and the warning names the fix).
    BfdEchoMultihop,
    /// BFD echo mode on a peer that gets IPv6 prefixes (MetalLB refuses the combination).
    BfdEchoIpv6,
    // Selectors.
    InvalidSelector,
    InvalidPriority,
    // Advice.
    NotAnnounced,
    SelectsNothing,
    Deprecated,
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub origin: Origin,
    /// The object's kind (`IPAddressPool`, `BGPPeer`, `ConfigMap`...), empty if unknown.
    pub kind: String,
    /// The object's name, empty if unknown.
    pub name: String,
    /// Path of the field inside the object, such as `spec.addresses[1]`; empty for the
    /// object as a whole.
    pub field: String,
    /// The offending value as written, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What would be valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            origin: Origin::default(),
            kind: String::new(),
            name: String::new(),
            field: String::new(),
            value: None,
            message: message.into(),
            expected: None,
        }
    }

    pub fn warning(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn at(mut self, origin: &Origin) -> Diagnostic {
        self.origin = origin.clone();
        self
    }

    pub fn object(mut self, kind: &str, name: &str) -> Diagnostic {
        self.kind = kind.to_string();
        self.name = name.to_string();
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Diagnostic {
        self.field = field.into();
        self
    }

    pub fn value(mut self, value: impl fmt::Display) -> Diagnostic {
        self.value = Some(value.to_string());
        self
    }

    pub fn expected(mut self, expected: impl Into<String>) -> Diagnostic {
        self.expected = Some(expected.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// One line: `file:line (document n): error: Kind "name" field = "value": message; expected: ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.origin.is_located() {
            write!(f, "{}: ", self.origin)?;
        }
        write!(f, "{severity}")?;
        if !self.kind.is_empty() {
            write!(f, ": {}", self.kind)?;
            if !self.name.is_empty() {
                write!(f, " {:?}", self.name)?;
            }
            // From the API: the namespace stands where a file would.
            if let (Some(namespace), false) = (&self.origin.namespace, self.origin.is_located()) {
                write!(f, " (namespace {namespace})")?;
            }
        } else if let (Some(namespace), false) = (&self.origin.namespace, self.origin.is_located())
        {
            write!(f, " (namespace {namespace})")?;
        }
        if !self.field.is_empty() {
            write!(f, " {}", self.field)?;
        }
        if let Some(value) = &self.value {
            write!(f, " = {value:?}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(expected) = &self.expected {
            write!(f, " (valid: {expected})")?;
        }
        Ok(())
    }
}
