//! Declaration fixtures: every valid one validates and round-trips; every invalid one fails with exactly its expected error.
