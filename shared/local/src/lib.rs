//! Baton on one machine: the ports on SQLite, encrypted files, an in-process bus and SMTP
//! ([`adapters`]), the providers that run with local files, `git` and `bash` ([`providers`]),
//! and the [`embedded`] runtime that wires them with the app's services.
#![warn(missing_docs)]

pub mod adapters;
pub mod embedded;
pub mod providers;
