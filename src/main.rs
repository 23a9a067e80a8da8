//! `thwonk`: the command-line interface and the daemon's entry point.
//!
//! - `serve` runs every role in one process (the embedded default: SQLite in the data
//!   directory and a private redis-server child); `ingress`, `runner`, `egress` run one role.
//! - `api` runs the HTTP API alone (with the admin socket).
//! - `deploy`, `list`, `runs`, `versions`, `rollback`, `enable`, `disable`, `delete`,
//!   `files`, `migrate` manage thwonks: through a running daemon's admin socket when one
//!   answers ([`remote`]), else the database directly; `invoke` and `feed` need the daemon.
//! - `user`, `token` manage the HTTP API's users and tokens ([`users`]), in the database.
//! - `jobs` shows and repairs the job queues on Redis.
//! - `test` runs a script once on a message file (or its `onSchedule`, `onRequest`) with no
//!   daemon at all.
//! - `tls-selfsigned` writes a development certificate and key for STARTTLS.
//!
//! The end-to-end load tool is a binary of its own, `thwonk-bench` (`crates/bench`, see
//! BENCHMARKS.md), so this one does not carry it.
//!
//! Modules: [`serve`] wires the roles together; [`manage`] holds the management commands;
//! [`remote`] their admin-socket path; [`users`] users and tokens; [`jobs`] the job-queue
//! command; [`metrics_http`] serves `/metrics` for single roles; [`notify`] tells systemd
//! when the daemon is ready (and `--ready-file` where it listens); [`probe`] is the health
//! check.

mod jobs;
mod lock;
mod manage;
mod metrics_http;
mod notify;
mod probe;
mod remote;
mod serve;
mod tls_selfsigned;
mod users;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use thwonk_core::Config;

#[derive(Parser)]
#[command(
    name = "thwonk",
    version,
    about = "Thwonk: mail to a rules address runs its JavaScript rule script."
)]
struct Cli {
    /// Configuration file (TOML; every key is documented in config/thwonk.toml).
    #[arg(long, global = true, env = "THWONK_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (overrides data_dir from the file and THWONK_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every role in one process: SMTP ingress, runner, egress and the HTTP API.
    Serve(serve::ServeArgs),
    /// Run only the SMTP ingress.
    Ingress(serve::ServeArgs),
    /// Run only the runner (rule scripts).
    Runner(serve::ServeArgs),
    /// Run only the egress (outgoing mail).
    Egress(serve::ServeArgs),
    /// Run only the HTTP API (http.listen) and the admin socket ({data_dir}/admin.sock).
    Api(serve::ServeArgs),
    /// Users of the HTTP API.
    User {
        #[command(subcommand)]
        action: users::UserAction,
    },
    /// API tokens: create (shown once), list, revoke.
    Token {
        #[command(subcommand)]
        action: users::TokenAction,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Check a script and make it the active version of ADDRESS (creating the thwonk).
    Deploy { address: String, script: PathBuf },
    /// List thwonks.
    List,
    /// Show recent runs of a thwonk: trigger, message (id, sender, subject), status, where
    /// an error happened, logs, cost.
    Runs {
        address: String,
        /// How many runs, newest first.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Then keep printing runs as they are recorded, oldest first (checks every second;
        /// Ctrl-C stops).
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// A thwonk's script versions, newest first; the active one is marked.
    Versions { address: String },
    /// Make an existing script version active again.
    Rollback { address: String, version: i64 },
    /// Accept mail (and run the schedule) again.
    Enable { address: String },
    /// Stop accepting mail and running the schedule; versions, files and runs are kept.
    Disable { address: String },
    /// Delete a thwonk with its versions, messages, runs and files.
    Delete {
        address: String,
        /// Really delete (nothing is deleted without it).
        #[arg(long)]
        yes: bool,
    },
    /// Run the script's onRequest with a JSON body through the running daemon; prints the
    /// outcome ({run_id, status, value, error}) as JSON; exits 0 when the run succeeded.
    Invoke {
        address: String,
        /// The JSON body (default {}); `-` reads it from standard input.
        body: Option<String>,
    },
    /// A feed's newest items (`thwonk.feed(NAME)`); with --follow, then its changes live.
    /// Needs the running daemon.
    Feed {
        address: String,
        name: String,
        /// Keep printing changes as they happen (Ctrl-C stops).
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Job queues on Redis: depths, claimed, stalled; retry or drop stalled jobs.
    Jobs {
        #[command(subcommand)]
        action: Option<jobs::JobsAction>,
    },
    /// Read and change a thwonk's files.
    Files {
        address: String,
        #[command(subcommand)]
        action: manage::FilesAction,
    },
    /// Health check: exit 0 when the SMTP ingress greets, the HTTP API answers /healthz, or
    /// (deps) Redis and the database answer.
    Probe {
        #[arg(value_enum)]
        target: probe::Target,
    },
    /// Run a script once on a message file (or its onSchedule, or its onRequest): no daemon,
    /// no Redis, no database. Prints the run's result as JSON; exits 0 when the script
    /// succeeded.
    Test {
        script: PathBuf,
        /// The message (an .eml file; examples/mail/ has some).
        #[arg(
            long,
            value_name = "FILE.eml",
            required_unless_present_any = ["schedule", "request"],
            conflicts_with_all = ["schedule", "request"]
        )]
        message: Option<PathBuf>,
        /// Run onSchedule instead, as a tick of CRON would (default: the script's own
        /// `schedule` export).
        #[arg(long, value_name = "CRON", num_args = 0..=1, default_missing_value = "", conflicts_with = "request")]
        schedule: Option<String>,
        /// Run onRequest instead, with this JSON body (`-` reads standard input), as
        /// `thwonk invoke` would.
        #[arg(long, value_name = "JSON")]
        request: Option<String>,
        /// A directory whose files the script can read.
        #[arg(long, value_name = "DIR")]
        files: Option<PathBuf>,
        /// The rules address the script runs as (default: the message's first To: address).
        #[arg(long)]
        address: Option<String>,
    },
    /// Write a self-signed certificate and key for STARTTLS (development only) into DIR,
    /// and print the [smtp] settings that use them.
    TlsSelfsigned {
        /// Directory for cert.pem and key.pem (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// A name the certificate is valid for; repeatable (default: smtp.hostname).
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
    },
}

/// Everything Thwonk creates is its own: the data directory (0700), the SQLite database, the
/// private Redis's append-only file, captured mail (0600). Mail and scripts are private data,
/// and the default umask would leave them readable by every local user. As Postfix does, the
/// whole process (and the redis-server it starts) runs with umask 077.
fn private_umask() {
    // SAFETY: umask(2) only sets the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

fn main() -> std::process::ExitCode {
    // A sandbox worker started by this binary's own runner: no CLI, config or logging (hidden
    // from --help; see thwonk_sandbox::worker).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == thwonk_sandbox::worker::ARG)
    {
        return thwonk_sandbox::worker::main();
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Each cause once: nested errors often repeat their source's text.
            eprintln!("thwonk: {}", thwonk_core::report::error_chain(e.chain()));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<std::process::ExitCode> {
    private_umask();
    let mut config = Config::load(cli.config.as_deref(), std::env::vars())?;
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    init_logging(config.log.format, "info");
    let config = Arc::new(config);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    use serve::Roles;
    let ok = std::process::ExitCode::SUCCESS;
    let outcome = match cli.command {
        Command::Serve(args) => rt
            .block_on(serve::serve(config, Roles::ALL, args))
            .map(|_| ok),
        Command::Ingress(args) => rt
            .block_on(serve::serve(config, Roles::INGRESS, args))
            .map(|_| ok),
        Command::Runner(args) => rt
            .block_on(serve::serve(config, Roles::RUNNER, args))
            .map(|_| ok),
        Command::Egress(args) => rt
            .block_on(serve::serve(config, Roles::EGRESS, args))
            .map(|_| ok),
        Command::Api(args) => rt
            .block_on(serve::serve(config, Roles::API, args))
            .map(|_| ok),
        Command::User { action } => rt.block_on(users::user(&config, action)).map(|_| ok),
        Command::Token { action } => rt.block_on(users::token(&config, action)).map(|_| ok),
        Command::Migrate => rt.block_on(manage::migrate(&config)).map(|_| ok),
        Command::Deploy { address, script } => {
            rt.block_on(manage::deploy(&config, &address, &script))
        }
        Command::List => rt.block_on(manage::list(&config)).map(|_| ok),
        Command::Runs {
            address,
            limit,
            json,
            follow,
        } => rt
            .block_on(manage::runs(&config, &address, limit, json, follow))
            .map(|_| ok),
        Command::Versions { address } => {
            rt.block_on(manage::versions(&config, &address)).map(|_| ok)
        }
        Command::Rollback { address, version } => rt
            .block_on(manage::rollback(&config, &address, version))
            .map(|_| ok),
        Command::Enable { address } => rt
            .block_on(manage::set_status(&config, &address, true))
            .map(|_| ok),
        Command::Disable { address } => rt
            .block_on(manage::set_status(&config, &address, false))
            .map(|_| ok),
        Command::Delete { address, yes } => rt
            .block_on(manage::delete(&config, &address, yes))
            .map(|_| ok),
        Command::Invoke { address, body } => {
            rt.block_on(manage::invoke(&config, &address, body.as_deref()))
        }
        Command::Feed {
            address,
            name,
            follow,
        } => rt
            .block_on(manage::feed(&config, &address, &name, follow))
            .map(|_| ok),
        Command::Jobs { action } => rt.block_on(jobs::jobs(&config, action)),
        Command::Files { address, action } => rt.block_on(manage::files(&config, &address, action)),
        Command::Probe { target } => rt.block_on(probe::probe(&config, target)).map(|_| ok),
        Command::Test {
            script,
            message,
            schedule,
            request,
            files,
            address,
        } => {
            let what = match (message, schedule, request) {
                (Some(m), _, _) => manage::TestInput::Message(m),
                (None, Some(cron), _) => manage::TestInput::Schedule(cron),
                (None, None, Some(body)) => manage::TestInput::Request(body),
                (None, None, None) => anyhow::bail!("pass --message, --schedule or --request"),
            };
            manage::test(&config, &script, what, files, address.as_deref())
        }
        Command::TlsSelfsigned { out, hosts } => {
            tls_selfsigned::run(&config, &out, hosts).map(|_| ok)
        }
    };
    // Do not wait for blocking work a role abandoned at the end of its shutdown grace (a
    // sandbox worker's answer, say): the process exits and its workers die with it.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    outcome
}

/// Logging to standard error, in the configured format (`[log] format`, `THWONK_LOG_FORMAT`),
/// set up once the configuration is loaded; `default` is the level when THWONK_LOG is unset.
fn init_logging(format: thwonk_core::config::LogFormat, default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("THWONK_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal: logs captured by systemd, docker or a test stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        thwonk_core::config::LogFormat::Text => builder.with_ansi(ansi).init(),
        // One object per line; `span` and `spans` carry the enclosing spans' fields (a run's
        // thwonk, message and run ids).
        thwonk_core::config::LogFormat::Json => builder.json().init(),
    }
}
