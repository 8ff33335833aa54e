//! Who is calling: JWT verification and the typed caller it yields. The tower
//! layer that authenticates every request is the server's
//! (`server::auth_layer`); handlers read the [`Caller`] it puts in the request.

mod jwks;
mod keys;
pub mod sealing;

use std::collections::BTreeSet;

pub use keys::{Claims, KeyError, Verifier, mint_token};

use crate::domain::Role;
use crate::error::Error;

/// The authenticated caller, taken from a verified token. The tenant (`org`)
/// always comes from here, never from the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`: a user id or a service account id.
    pub user: String,
    /// The token's `org`: the tenant every read and write is confined to.
    pub org: String,
    pub roles: BTreeSet<Role>,
}

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// `PERMISSION_DENIED` unless the caller holds one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), Error> {
        if roles.iter().any(|r| self.has(*r)) {
            Ok(())
        } else {
            let names: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
            Err(Error::PermissionDenied(format!("this call needs one of the roles: {}", names.join(", "))))
        }
    }

    /// True when the caller can act on any interview of the organisation, not only
    /// their own (integration, admin, recruiter for reads).
    pub fn sees_everything(&self) -> bool {
        self.has(Role::Admin) || self.has(Role::Integration) || self.has(Role::Recruiter)
    }
}

/// The caller of a tonic request, put there by the server's auth layer.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, Error> {
    request.extensions().get::<Caller>().cloned().ok_or(Error::Unauthenticated)
}
