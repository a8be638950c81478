use clap::Parser;

fn main() -> std::process::ExitCode {
    pawscope::cli::run(pawscope::cli::Cli::parse())
}
