//! The `warden` binary: read the configuration, set up logs, then migrate or serve.
//! Everything else lives in the library.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;
use warden::config::Config;
use warden::error::StartupError;
use warden::{build_state, db, run, shutdown_signal};

const USAGE: &str = "\
usage: warden [serve|migrate|healthcheck]

  serve        (default) run migrations unless RUN_MIGRATIONS=false, then serve the API
  migrate      run the database migrations and exit
  healthcheck  GET /healthz of the warden on BIND_ADDR's port; exit 0 when it answers 200
               (for container HEALTHCHECKs: the runtime image needs no curl)

Configuration comes from the environment (and a .env file); see README.md.";

enum Command {
    Serve,
    Migrate,
    Healthcheck,
}

#[tokio::main]
async fn main() -> ExitCode {
    // A missing .env is normal; anything in it never overrides the real environment.
    let _ = dotenvy::dotenv();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] | ["serve"] => Command::Serve,
        ["migrate"] => Command::Migrate,
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

    match execute(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            eprintln!("warden: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> Result<(), StartupError> {
    let config = Config::from_env()?;
    if let Command::Healthcheck = command {
        return healthcheck(&config).await;
    }
    let pool = db::connect(&config).await.map_err(StartupError::Database)?;
    match command {
        Command::Migrate => {
            db::migrate(&pool).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Healthcheck => Ok(()),
        Command::Serve => {
            if config.run_migrations {
                db::migrate(&pool).await?;
                tracing::info!("migrations applied");
            }
            let state = build_state(&config, pool).await?;
            let listener = tokio::net::TcpListener::bind(config.bind_addr)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.bind_addr,
                    source,
                })?;
            tracing::info!(addr = %config.bind_addr, jwks = %config.jwks_url, "warden listening");
            run(listener, state, shutdown_signal()).await
        }
    }
}

/// Asks the local warden for `/healthz`.
async fn healthcheck(config: &Config) -> Result<(), StartupError> {
    let url = format!("http://127.0.0.1:{}/healthz", config.bind_addr.port());
    let response = reqwest::Client::new()
        .get(&url)
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(StartupError::Unhealthy(format!(
            "{url} answered {}",
            response.status()
        )))
    }
}
