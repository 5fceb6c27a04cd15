//! The binary's operations commands: `backup`, `config check` and
//! `healthcheck` (a module of `main.rs`, not of the library).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use callview_core::twilio::TwilioConfig;
use callview_server::config::{self, Resolved, Setting};
use callview_server::db::{self, Backend};
use clap::{CommandFactory, FromArgMatches};

use super::{
    env_var, party_rules, serve_database, BackupArgs, Cli, Command, CommonArgs, HealthcheckArgs,
    ServeArgs, DEFAULT_DATABASE_URL,
};

/// `callview backup FILE`.
pub(crate) async fn backup(common: &CommonArgs, args: BackupArgs) -> Result<()> {
    let url = common
        .database_url
        .as_deref()
        .unwrap_or(DEFAULT_DATABASE_URL);
    match db::backend_of(url) {
        Some(Backend::Sqlite) => {}
        Some(Backend::Postgres) => bail!(
            "{} is a PostgreSQL database: back it up with PostgreSQL's own tools, e.g. \
             `pg_dump --format=custom --file={} \"$DATABASE_URL\"` (restore with pg_restore); \
             `callview backup` copies SQLite databases",
            db::redact(url),
            args.file.display()
        ),
        None => bail!(
            "unsupported database URL {}: use sqlite://PATH",
            db::redact(url)
        ),
    }
    let options = callview_sqlite::backup::BackupOptions {
        overwrite: args.force,
        ..Default::default()
    };
    let source = url.to_owned();
    let file = args.file.clone();
    let report = tokio::task::spawn_blocking(move || {
        callview_sqlite::backup::backup(&source, &file, &options)
    })
    .await
    .context("the backup task failed")?
    .with_context(|| format!("the backup of {} failed", db::redact(url)))?;
    println!(
        "backed up {} to {} ({} pages, {} bytes, {:.2} s)",
        db::redact(url),
        report.path.display(),
        report.pages,
        report.bytes,
        report.elapsed_ms as f64 / 1000.0
    );
    Ok(())
}

/// `callview healthcheck`: the address given to it (flag, environment,
/// config file), or else the one `serve` would listen on with the same
/// settings (a `[serve]` table's `listen`).
pub(crate) async fn healthcheck(args: HealthcheckArgs, resolved: &Resolved) -> Result<()> {
    let listen = match config::source_of(Cli::command(), resolved, "listen") {
        config::Source::Default | config::Source::Unset => {
            let (_, cli) = resolve_serve(resolved)?;
            match cli.command {
                Command::Serve(serve) => serve.listen,
                _ => args.listen,
            }
        }
        _ => args.listen,
    };
    let addr = callview_server::healthcheck::local_address(listen);
    let path = if args.path.starts_with('/') {
        args.path
    } else {
        format!("/{}", args.path)
    };
    let (status, body) =
        callview_server::healthcheck::get(addr, &path, Duration::from_secs(args.timeout.max(1)))
            .await?;
    if (200..300).contains(&status) {
        println!("healthy: {path} answered {status}");
        Ok(())
    } else {
        bail!(
            "unhealthy: {path} answered {status}: {}",
            body.chars().take(500).collect::<String>().trim()
        )
    }
}

/// `callview config check`: resolves the settings `serve` would use (the
/// global flags given here, the environment, the config file), checks them
/// by building what `serve` builds, and prints them with their sources.
pub(crate) fn config_check(resolved: &Resolved, json: bool) -> Result<()> {
    let (serve, cli) = resolve_serve(resolved)?;
    let Command::Serve(serve_args) = &cli.command else {
        bail!("internal error: not the serve command");
    };
    let mut settings = config::settings(Cli::command(), &serve);
    settings.extend(twilio_settings());
    let problems = check_serve(&cli.common, serve_args);
    let file = serve.file.as_ref().map(|f| f.display().to_string());
    let mut warnings = Vec::new();
    if let Some(path) = &serve.file {
        warnings.extend(file_permission_warning(path, &settings));
    }
    if json {
        let out = serde_json::json!({
            "config_file": file,
            "ok": problems.is_empty(),
            "problems": problems,
            "warnings": warnings,
            "settings": settings,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        match &file {
            Some(file) => println!("config file: {file}"),
            None => println!("config file: none (--config / CALLVIEW_CONFIG not set)"),
        }
        println!("settings of `callview serve` (value, where it came from):");
        print!("{}", config::render(&settings));
        for warning in &warnings {
            println!("warning: {warning}");
        }
        if problems.is_empty() {
            println!("configuration OK");
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        if !json {
            for problem in &problems {
                eprintln!("problem: {problem}");
            }
        }
        bail!("the configuration has {} problem(s)", problems.len())
    }
}

/// The settings `callview serve` would run with, given the global flags
/// of the command `resolved` ran, the environment and the config file.
fn resolve_serve(resolved: &Resolved) -> Result<(Resolved, Cli)> {
    let mut args = vec![std::ffi::OsString::from("callview")];
    args.extend(config::explicit_globals(Cli::command(), resolved));
    args.push("serve".into());
    let serve = config::resolve(Cli::command(), args).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cli = Cli::from_arg_matches(&serve.matches).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((serve, cli))
}

/// The Twilio variables (environment only), secrets redacted.
fn twilio_settings() -> Vec<Setting> {
    [
        ("TWILIO_ACCOUNT_SID", false),
        ("TWILIO_AUTH_TOKEN", true),
        ("TWILIO_API_KEY", false),
        ("TWILIO_API_SECRET", true),
        ("TWILIO_API_BASE_URL", false),
        ("TWILIO_INTELLIGENCE_BASE_URL", false),
    ]
    .into_iter()
    .map(|(name, secret)| {
        let value = env_var(name);
        Setting {
            key: name.to_owned(),
            source: if value.is_some() {
                format!("env {name}")
            } else {
                "unset".to_owned()
            },
            value: value.map(|v| if secret { "***".to_owned() } else { v }),
            secret,
        }
    })
    .collect()
}

/// What `serve` would refuse, checked without opening anything.
fn check_serve(common: &CommonArgs, args: &ServeArgs) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = party_rules(common) {
        problems.push(format!("{e:#}"));
    }
    let twilio = match TwilioConfig::from_env() {
        Ok(config) => config,
        Err(e) => {
            problems.push(format!("Twilio configuration: {e}"));
            None
        }
    };
    let base_url_only = twilio.is_none() && env_var("TWILIO_API_BASE_URL").is_some();
    let demo_mode = args.demo || (twilio.is_none() && !base_url_only);
    match serve_database(common.database_url.as_deref(), demo_mode, args.demo) {
        Ok(url) => match db::backend_of(&url) {
            Some(Backend::Postgres) => {
                if let Err(e) = url::Url::parse(url.trim()) {
                    problems.push(format!(
                        "database_url {} is not a valid URL: {e}",
                        db::redact(&url)
                    ));
                }
            }
            Some(Backend::Sqlite) => {}
            None => problems.push(format!(
                "unsupported database URL {}: use sqlite://PATH or postgres://USER@HOST/DB",
                db::redact(&url)
            )),
        },
        Err(e) => problems.push(e),
    }
    let token = args.api_token.as_deref().filter(|t| !t.is_empty());
    if let Err(e) =
        callview_server::check_exposure(args.listen, token.is_some(), args.insecure_no_auth)
    {
        problems.push(e.to_string());
    }
    if let Some(public) = &args.public_url {
        match url::Url::parse(public) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(_) => problems.push(format!("public_url {public} is not an http(s) URL")),
            Err(e) => problems.push(format!("public_url {public} is not a URL: {e}")),
        }
    }
    if let Some(dir) = &args.recording_cache {
        if dir.exists() && !dir.is_dir() {
            problems.push(format!(
                "recording_cache {} is not a directory",
                dir.display()
            ));
        }
    }
    problems
}

/// A warning when the config file holds a secret and others may read it.
fn file_permission_warning(path: &std::path::Path, settings: &[Setting]) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let holds_secret = settings.iter().any(|s| {
            let secret = if s.key.ends_with("url") {
                // A URL is a secret when it holds a password.
                s.value.as_deref().is_some_and(|v| v.contains(":***@"))
            } else {
                s.secret
            };
            s.source == "file" && secret
        });
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        (holds_secret && mode & 0o004 != 0).then(|| {
            format!(
                "{} holds secrets and anyone on this machine may read it (mode {:o}): chmod 600 it",
                path.display(),
                mode & 0o777
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = (path, settings);
        None
    }
}
