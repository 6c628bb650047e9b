//! Tests of the `baton` binary, as one test binary: each subcommand's tests are in `cli/<name>.rs`
//! (a bare `mod x;` would look in `tests/`, where cargo also builds every file as its own binary).
#[path = "cli/validate.rs"]
mod validate;
