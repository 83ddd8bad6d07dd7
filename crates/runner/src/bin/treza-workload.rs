//! Stand-alone workload supervisor (`treza-workload start|stop|status`); the
//! `treza` binary offers the same as `treza workload ...`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(treza_runner::workload::workload_main(&args));
}
