//! Borrowed ids with their kind in the type, for calls that take several ids
//! of the same shape: an interviewer and a candidate passed in the wrong order
//! do not compile.

/// A user: the JWT `sub` of an interviewer, recruiter, admin or service account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserId<'a>(pub &'a str);

/// A candidate: the `{id}` of `candidates/{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandidateId<'a>(pub &'a str);
