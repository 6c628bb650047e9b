//! Integration tests of the pure core, built as one binary.

mod declarations;
mod events;
mod simulation;
