//! Identifiers, and the SPIFFE-style identities certificates carry.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an identifier or identity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// An agency id is not 2–32 characters of `A-Z`, `0-9` and `-`.
    #[error(
        "invalid agency id {0:?}: expected 2-32 characters of A-Z, 0-9 and '-', such as TR-MIT"
    )]
    Agency(String),
    /// A federation id is not 1–63 characters of `a-z`, `0-9`, `.` and `-`.
    #[error("invalid federation id {0:?}: expected 1-63 characters of a-z, 0-9, '.' and '-'")]
    Federation(String),
    /// An operator name is not 1–64 characters of `a-z`, `A-Z`, `0-9`, `.`, `_` and `-`.
    #[error(
        "invalid operator name {0:?}: expected 1-64 characters of letters, digits, '.', '_' and '-'"
    )]
    Operator(String),
    /// An alert id is not a ULID.
    #[error("invalid alert id {0:?}: expected a ULID such as 01JD3Z8X6Q2N4V5W7Y9A0B1C2D")]
    Alert(String),
    /// A URI is not a Tocsin identity.
    #[error("{0:?} is not a Tocsin identity (spiffe://<federation>/agency/<ID>[/operator/<name>])")]
    Uri(String),
}

/// An agency of the federation, such as `TR-MIT` or `FR-DGSI`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgencyId(String);

impl AgencyId {
    /// Parses and checks an agency id.
    pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
        let id = id.into();
        let ok = (2..=32).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
            && !id.starts_with('-')
            && !id.ends_with('-');
        if ok {
            Ok(Self(id))
        } else {
            Err(IdError::Agency(id))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AgencyId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for AgencyId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<AgencyId> for String {
    fn from(id: AgencyId) -> Self {
        id.0
    }
}

/// The id of a federation (its trust domain), such as `paris-2015.tocsin`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FederationId(String);

impl FederationId {
    /// Parses and checks a federation id.
    pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
        let id = id.into();
        let ok = (1..=63).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if ok {
            Ok(Self(id))
        } else {
            Err(IdError::Federation(id))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FederationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for FederationId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<FederationId> for String {
    fn from(id: FederationId) -> Self {
        id.0
    }
}

/// The id of an alert: a ULID, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlertId(ulid::Ulid);

impl AlertId {
    /// A fresh id for an alert created now.
    pub fn generate() -> Self {
        Self(ulid::Ulid::new())
    }
}

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for AlertId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ulid::Ulid::from_string(s)
            .map(Self)
            .map_err(|_| IdError::Alert(s.to_owned()))
    }
}

/// Who is on the other end of a connection, as its certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// An agency's node.
    Agency(AgencyId),
    /// A named operator (analyst or tool) of an agency.
    Operator {
        /// The operator's agency.
        agency: AgencyId,
        /// The operator's name within the agency.
        name: String,
    },
}

impl Identity {
    /// The agency this identity belongs to.
    pub fn agency(&self) -> &AgencyId {
        match self {
            Identity::Agency(a) => a,
            Identity::Operator { agency, .. } => agency,
        }
    }

    /// An operator identity, with its name checked.
    pub fn operator(agency: AgencyId, name: impl Into<String>) -> Result<Self, IdError> {
        let name = name.into();
        let ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
        if ok {
            Ok(Identity::Operator { agency, name })
        } else {
            Err(IdError::Operator(name))
        }
    }

    /// The SPIFFE-style URI for this identity in `federation`.
    pub fn to_uri(&self, federation: &FederationId) -> String {
        match self {
            Identity::Agency(a) => format!("spiffe://{federation}/agency/{a}"),
            Identity::Operator { agency, name } => {
                format!("spiffe://{federation}/agency/{agency}/operator/{name}")
            }
        }
    }

    /// Parses a SPIFFE-style URI, returning the federation it names and the identity.
    pub fn from_uri(uri: &str) -> Result<(FederationId, Identity), IdError> {
        let bad = || IdError::Uri(uri.to_owned());
        let rest = uri.strip_prefix("spiffe://").ok_or_else(bad)?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [fed, "agency", agency] => Ok((
                FederationId::new(*fed)?,
                Identity::Agency(AgencyId::new(*agency)?),
            )),
            [fed, "agency", agency, "operator", name] => Ok((
                FederationId::new(*fed)?,
                Identity::operator(AgencyId::new(*agency)?, *name)?,
            )),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Agency(a) => write!(f, "agency {a}"),
            Identity::Operator { agency, name } => write!(f, "operator {name} of {agency}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agency_ids_are_checked() {
        assert!(AgencyId::new("TR-MIT").is_ok());
        assert!(AgencyId::new("EU-EUROPOL").is_ok());
        for bad in ["", "t", "tr-mit", "TR MIT", "-TR", "TR/MIT", "TR-MIT-"] {
            assert!(AgencyId::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn identities_round_trip_through_uris() {
        let fed = FederationId::new("demo.tocsin").unwrap();
        let node = Identity::Agency(AgencyId::new("FR-DGSI").unwrap());
        let op = Identity::operator(AgencyId::new("FR-DGSI").unwrap(), "alice").unwrap();
        for id in [node, op] {
            let uri = id.to_uri(&fed);
            assert_eq!(Identity::from_uri(&uri).unwrap(), (fed.clone(), id));
        }
    }

    #[test]
    fn foreign_uris_are_refused() {
        for bad in [
            "https://demo.tocsin/agency/FR-DGSI",
            "spiffe://demo.tocsin/agency/FR-DGSI/extra",
            "spiffe://demo.tocsin/agency/fr-dgsi",
            "spiffe://demo.tocsin/agency/FR-DGSI/operator/",
            "spiffe://demo.tocsin/agency/FR-DGSI/operator/a/b",
        ] {
            assert!(Identity::from_uri(bad).is_err(), "{bad:?} accepted");
        }
    }
}
