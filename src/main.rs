use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = match ferry::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap exits 2 for usage errors; ferry's table says 1 (2 means AWS).
            let _ = e.print();
            let code = if e.use_stderr() { ferry::ExitCode::Usage.code() } else { 0 };
            return std::process::ExitCode::from(code);
        }
    };
    std::process::ExitCode::from(ferry::run(cli).code())
}
