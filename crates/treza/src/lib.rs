//! The treza binary's library half: the CLI, the HTTP API and the embedded
//! server that wires store -> stream processor -> workflow engine -> runner.
//! Split from `main.rs` so integration tests and benchmarks can start a
//! server in-process.

pub mod cli;
pub mod clock;
pub mod server;
