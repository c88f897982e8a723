//! The `warden` binary: read the configuration, set up logs, then serve, migrate, check or
//! probe health. Everything else lives in the library.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;
use warden::StartupError;
use warden::config::{Config, LogFormat};
use warden::server::{self, AppState, check, run, shutdown_signal};

/// mimalloc returns what the caches evict and the requests drop; glibc's malloc kept several
/// times the live heap resident (ADR 0013).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
usage: warden [serve|migrate|check|healthcheck]

  serve        (default) run migrations unless RUN_MIGRATIONS=false, then serve the API
  migrate      run the database migrations and exit
  check        report on config, database, schema, migrations and JWKS; exit 1 on a failure
  healthcheck  GET /healthz of the warden on BIND_ADDR's port; exit 0 when it answers 200
               (for container HEALTHCHECKs: the runtime image needs no curl)

Configuration comes from the environment (and a .env file); see README.md.";

enum Command {
    Serve,
    Migrate,
    Check,
    Healthcheck,
}

fn main() -> ExitCode {
    // Whether the allocator's setting is in the real environment, before .env adds to it.
    #[cfg(all(unix, feature = "mimalloc"))]
    let purge_delay_given = std::env::var_os(allocator::PURGE_DELAY).is_some();
    // A missing .env is normal; anything in it never overrides the real environment.
    let _ = dotenvy::dotenv();
    #[cfg(all(unix, feature = "mimalloc"))]
    if !purge_delay_given {
        allocator::restart_with_purge_delay();
    }
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(start()),
        Err(err) => {
            eprintln!("warden: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The allocator's one setting that cannot be given in code.
#[cfg(all(unix, feature = "mimalloc"))]
mod allocator {
    use std::os::unix::process::CommandExt;

    /// Milliseconds mimalloc keeps freed memory before returning it to the OS. Its default
    /// (1,000) kept 185 MB resident after 10,000 connections closed, and put a bare binary at
    /// 41–43 MB with 1,000 connections on an Intel Xeon; `0` returns memory at once, at the
    /// same throughput (BENCHMARKS.md, ADR 13).
    pub const PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";

    /// mimalloc reads its options from the environment once, before `main`, and setting one
    /// from code needs `unsafe`, which this crate forbids. So when the environment did not
    /// set the delay, the binary executes itself again, once, with the `.env` file's value or
    /// `0`. `exec` keeps the process id, the arguments, the other variables and the standard
    /// streams, so a supervisor (Docker, systemd) sees the same process. Returns only if that
    /// fails; the process then runs on with mimalloc's default.
    pub fn restart_with_purge_delay() {
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let mut command = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            command.arg0(arg0);
        }
        command.args(args);
        if std::env::var_os(PURGE_DELAY).is_none() {
            command.env(PURGE_DELAY, "0");
        }
        let err = command.exec();
        eprintln!(
            "warden: could not restart with {PURGE_DELAY} set ({err}); the allocator keeps its default"
        );
    }
}

async fn start() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] | ["serve"] => Command::Serve,
        ["migrate"] => Command::Migrate,
        ["check"] => Command::Check,
        ["healthcheck"] => Command::Healthcheck,
        ["-h" | "--help" | "help"] => {
            eprintln!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        ["-V" | "--version"] => {
            eprintln!("warden {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("warden: unknown arguments {args:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let config = Config::from_env();
    if let Command::Check = command {
        return report(check::run(config).await);
    }
    let config = match config {
        Ok(config) => config,
        Err(err) => {
            eprintln!("warden: configuration: {err}");
            return ExitCode::from(2);
        }
    };
    init_logs(config.http.log_format);

    match execute(command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            eprintln!("warden: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to standard output: `pretty` lines for people, or JSON.
fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours_wanted());
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// Colours only for a person at a terminal: a file, a pipe or a log collector would keep the
/// escape codes as text. `NO_COLOR` (any non-empty value, no-color.org) turns them off there too.
fn colours_wanted() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[allow(clippy::print_stdout, reason = "the report is the command's output")]
fn report(report: check::Report) -> ExitCode {
    for finding in &report.findings {
        println!("{finding}");
    }
    if report.failed() {
        println!("warden check: problems found");
        ExitCode::FAILURE
    } else {
        println!("warden check: all good");
        ExitCode::SUCCESS
    }
}

async fn execute(command: Command, config: Config) -> Result<(), StartupError> {
    if let Command::Healthcheck = command {
        return healthcheck(&config).await;
    }
    let pools = server::connect(&config).await?;
    match command {
        Command::Migrate => {
            server::migrate(&pools.primary).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Serve => {
            if config.database.run_migrations {
                server::migrate(&pools.primary).await?;
                tracing::info!("migrations applied");
            }
            let state = AppState::from_config(&config, pools).await?;
            let listener = tokio::net::TcpListener::bind(config.http.bind_addr)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.http.bind_addr,
                    source,
                })?;
            let metrics = match config.http.metrics_addr {
                Some(addr) => Some(
                    tokio::net::TcpListener::bind(addr)
                        .await
                        .map_err(|source| StartupError::Bind { addr, source })?,
                ),
                None => None,
            };
            if config.http.metrics_addr.is_none() {
                tracing::warn!(
                    "/metrics is served on the main port ({}) to anyone who can reach it; set METRICS_ADDR \
                     (e.g. 127.0.0.1:9090) to serve it on an address of its own",
                    config.http.bind_addr
                );
            }
            tracing::info!(
                addr = %config.http.bind_addr,
                metrics = ?config.http.metrics_addr,
                jwks = %config.better_auth.jwks_url,
                auth_proxy = config.http.auth_proxy,
                "warden listening"
            );
            run(listener, metrics, state, shutdown_signal()).await
        }
        Command::Check | Command::Healthcheck => Ok(()),
    }
}

/// Asks the local warden for `/healthz`.
async fn healthcheck(config: &Config) -> Result<(), StartupError> {
    let url = format!("http://127.0.0.1:{}/healthz", config.http.bind_addr.port());
    let response = reqwest::Client::new()
        .get(&url)
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await
        .map_err(|err| StartupError::Unhealthy(format!("{url}: {err}")))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(StartupError::Unhealthy(format!(
            "{url} answered {}",
            response.status()
        )))
    }
}
