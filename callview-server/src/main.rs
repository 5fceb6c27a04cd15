//! The `callview` command line.
fn main() {}
