//! Stand-alone Terraform runner: input from environment variables, JSON
//! lines on stdout (see `treza_runner::runner_main`). The `treza` binary
//! offers the same as `treza runner`.

fn main() {
    std::process::exit(treza_runner::runner_main());
}
