//! Claims on action attempts for the embedded runtime, in memory.
//!
//! One process dispatches for a home (it holds the home's lock), so only its own workers can
//! race for an attempt, and a claim need not outlive it: a dispatcher that starts after a
//! crash must run again what the dead one held anyway. Memory gives exactly that, without a
//! SQLite write per action.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use baton_app::ports::state::{ActionClaims, StoreError};

/// Attempt -> until when it is claimed.
#[derive(Debug, Default)]
pub struct MemoryClaims(Mutex<HashMap<String, i64>>);

#[async_trait]
impl ActionClaims for MemoryClaims {
    async fn claim(&self, attempt: &str, now: i64, until: i64) -> Result<bool, StoreError> {
        let mut claims = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Ended attempts are forgotten here, so the map holds only what may still run.
        claims.retain(|_, held_until| *held_until > now);
        if claims.contains_key(attempt) {
            return Ok(false);
        }
        claims.insert(attempt.to_owned(), until);
        Ok(true)
    }

    async fn release(&self, attempt: &str, until: i64) -> Result<(), StoreError> {
        let mut claims = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if claims.get(attempt) == Some(&until) {
            claims.remove(attempt);
        }
        Ok(())
    }
}
