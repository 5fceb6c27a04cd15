//! The packaging files (`Dockerfile`, `compose.yaml`, `deploy/`) agree with
//! the binary: every subcommand, `--flag` and environment variable they use
//! is in the `--help` of the command they pass it to, the health check asks
//! a route the router serves, ports line up, the shutdown bounds of the
//! container runtime and of systemd exceed the server's own. The image
//! itself is built by `.ci/run` when the machine has a container engine.

mod reliability;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use reliability::{callview, BIN};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `callview <command...> --help`.
fn help(command: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let output = callview(dir.path())
        .args(command)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "callview {command:?} --help: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The words of `text` that start with `prefix` and go on with
/// `[A-Za-z0-9_-]`.
fn words_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let tail = &rest[at + prefix.len()..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(tail.len());
        if end > 0 {
            out.insert(tail[..end].to_owned());
        }
        rest = tail;
    }
    out
}

/// What a (sub)command accepts, read from its help.
struct Accepts {
    flags: BTreeSet<String>,
    env: BTreeSet<String>,
    text: String,
}

fn accepts(command: &[&str]) -> Accepts {
    let text = help(command);
    let main = help(&[]);
    let mut env = words_after(&text, "[env: ");
    // Global flags' variables, and the Twilio variables the main help names.
    env.extend(words_after(&main, "[env: "));
    env.extend(
        words_after(&main, "TWILIO_")
            .into_iter()
            .map(|w| format!("TWILIO_{w}")),
    );
    Accepts {
        flags: words_after(&text, "--"),
        env,
        text,
    }
}

/// The default a flag's help shows (`[default: 30]`), on the lines
/// after `--flag`.
fn default_of(help: &str, flag: &str) -> String {
    let at = help
        .find(&format!("--{flag} "))
        .unwrap_or_else(|| panic!("--{flag} not in help"));
    let tail = &help[at..];
    let start = tail.find("[default: ").unwrap() + "[default: ".len();
    tail[start..start + tail[start..].find(']').unwrap()].to_owned()
}

/// Checks `args` (subcommand words, then flags) against the binary; returns
/// the subcommand path.
fn check_command(args: &[String], what: &str) -> Vec<String> {
    let split = args
        .iter()
        .position(|a| a.starts_with('-'))
        .unwrap_or(args.len());
    let path: Vec<&str> = args[..split].iter().map(String::as_str).collect();
    assert!(!path.is_empty(), "{what}: no subcommand in {args:?}");
    let known = accepts(&path);
    for flag in &args[split..] {
        if let Some(name) = flag.strip_prefix("--") {
            let name = name.split('=').next().unwrap();
            assert!(
                known.flags.contains(name),
                "{what}: `callview {}` has no --{name}",
                path.join(" ")
            );
        }
    }
    path.iter().map(|s| s.to_string()).collect()
}

fn check_env(keys: impl IntoIterator<Item = String>, command: &[&str], what: &str) {
    let known = accepts(command);
    for key in keys {
        assert!(
            known.env.contains(&key),
            "{what}: `callview {}` reads no {key}",
            command.join(" ")
        );
    }
}

/// A JSON array written in a Dockerfile or YAML flow sequence.
fn json_array(text: &str) -> Vec<String> {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Dockerfile instructions (continuation lines joined), comments left out.
fn dockerfile() -> Vec<(String, String)> {
    let text = read("Dockerfile");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() && current.is_empty() {
            continue;
        }
        if let Some(part) = line.strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        let (name, rest) = current.split_once(' ').unwrap_or((&current, ""));
        out.push((name.to_uppercase(), rest.trim().to_owned()));
        current.clear();
    }
    out
}

fn instruction<'a>(all: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    all.iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn listen_port(listen: &str) -> u16 {
    listen
        .parse::<std::net::SocketAddr>()
        .unwrap_or_else(|e| panic!("{listen}: {e}"))
        .port()
}

#[test]
fn the_dockerfile_uses_the_binarys_commands_flags_and_routes() {
    let docker = dockerfile();
    // Multi-stage: built with cargo, run on a small image as a user.
    let from = instruction(&docker, "FROM");
    assert!(from.len() >= 2, "multi-stage: {from:?}");
    assert!(from.last().unwrap().contains("slim"), "{from:?}");
    let run = instruction(&docker, "RUN").join("\n");
    assert!(
        run.contains("-p callview-server") && run.contains("--bin callview"),
        "{run}"
    );
    assert!(BIN.ends_with("callview"), "the binary is `callview`: {BIN}");
    let user = instruction(&docker, "USER");
    assert!(
        user.len() == 1 && !user[0].starts_with("root") && !user[0].starts_with('0'),
        "a non-root user: {user:?}"
    );

    assert_eq!(instruction(&docker, "ENTRYPOINT"), [r#"["callview"]"#]);
    let cmd = json_array(instruction(&docker, "CMD")[0]);
    assert_eq!(check_command(&cmd, "Dockerfile CMD"), ["serve"]);

    // ENV: variables `serve` reads; the port it listens on is the one exposed.
    let env: BTreeMap<String, String> = instruction(&docker, "ENV")
        .iter()
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    check_env(env.keys().cloned(), &["serve"], "Dockerfile ENV");
    let listen = &env["CALLVIEW_LISTEN"];
    let ip: std::net::SocketAddr = listen.parse().unwrap();
    assert!(ip.ip().is_unspecified(), "reachable from outside: {listen}");
    let exposed: Vec<u16> = instruction(&docker, "EXPOSE")
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(exposed, [listen_port(listen)]);

    // HEALTHCHECK: `callview healthcheck`, which reads the same variable,
    // asks a route the router serves.
    let health = instruction(&docker, "HEALTHCHECK")[0];
    let (_, cmd) = health.split_once("CMD ").expect("HEALTHCHECK CMD");
    let cmd = json_array(cmd);
    assert_eq!(cmd[0], "callview");
    assert_eq!(check_command(&cmd[1..], "HEALTHCHECK"), ["healthcheck"]);
    let healthcheck = accepts(&["healthcheck"]);
    assert!(healthcheck.env.contains("CALLVIEW_LISTEN"));
    let path = default_of(&healthcheck.text, "path");
    assert!(
        callview_server::ROUTES.contains(&("GET", path.as_str())),
        "{path} is not a route"
    );
    assert_eq!(instruction(&docker, "STOPSIGNAL"), ["SIGTERM"]);

    // The build context leaves out what the build does not need.
    let ignore = read(".dockerignore");
    for needed in ["Cargo.lock", ".cargo", "callview-", "Cargo.toml"] {
        assert!(
            !ignore.lines().any(|l| l.trim() == needed),
            ".dockerignore leaves out {needed}"
        );
    }
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
}

/// A compose service, as far as the test reads it.
#[derive(Debug, Default)]
struct Service {
    image: Option<String>,
    build: bool,
    command: Option<Vec<String>>,
    environment: BTreeMap<String, String>,
    env_file: Option<String>,
    stop_grace_secs: Option<u64>,
    volumes: Vec<String>,
}

/// Reads the shapes compose.yaml uses: two-space indentation, `command`
/// as a flow sequence, `environment` as a mapping.
fn compose() -> BTreeMap<String, Service> {
    let text = read("compose.yaml");
    let mut services = BTreeMap::new();
    let mut in_services = false;
    let mut current: Option<String> = None;
    let mut section = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        match indent {
            0 => {
                in_services = trimmed == "services:";
                current = None;
            }
            2 if in_services => {
                let name = trimmed.trim_end_matches(':').to_owned();
                services.insert(name.clone(), Service::default());
                current = Some(name);
            }
            4 if in_services => {
                let service = services.get_mut(current.as_ref().unwrap()).unwrap();
                let (key, value) = trimmed.split_once(':').unwrap();
                let value = value.trim();
                section = key.to_owned();
                match key {
                    "image" => service.image = Some(value.to_owned()),
                    "build" => service.build = true,
                    "command" => service.command = Some(json_array(value)),
                    "env_file" => service.env_file = Some(value.to_owned()),
                    "stop_grace_period" => {
                        service.stop_grace_secs = Some(value.trim_end_matches('s').parse().unwrap())
                    }
                    _ => {}
                }
            }
            6 if in_services => {
                let service = services.get_mut(current.as_ref().unwrap()).unwrap();
                match section.as_str() {
                    "environment" => {
                        let (key, value) = trimmed.split_once(':').unwrap();
                        service
                            .environment
                            .insert(key.to_owned(), value.trim().trim_matches('"').to_owned());
                    }
                    "volumes" => service
                        .volumes
                        .push(trimmed.trim_start_matches("- ").to_owned()),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    services
}

#[test]
fn compose_runs_two_instances_on_one_postgres_behind_a_proxy() {
    let services = compose();
    let docker = dockerfile();
    let exposed: u16 = instruction(&docker, "EXPOSE")[0].parse().unwrap();
    let serve_help = accepts(&["serve"]);
    let bound: u64 = default_of(&serve_help.text, "shutdown-timeout")
        .parse()
        .unwrap();

    let instances: Vec<(&String, &Service)> = services
        .iter()
        .filter(|(_, s)| s.image.as_deref() == Some("callview:latest"))
        .collect();
    assert_eq!(instances.len(), 2, "{services:?}");
    assert!(
        instances.iter().any(|(_, s)| s.build),
        "one builds the image"
    );
    let mut urls = BTreeSet::new();
    let mut syncing = 0;
    for (name, service) in &instances {
        let what = format!("compose.yaml {name}");
        let command = service
            .command
            .clone()
            .unwrap_or_else(|| vec!["serve".into()]);
        assert_eq!(check_command(&command, &what), ["serve"]);
        check_env(service.environment.keys().cloned(), &["serve"], &what);
        assert_eq!(service.env_file.as_deref(), Some(".env"), "{what}");
        let url = &service.environment["DATABASE_URL"];
        assert!(
            url.starts_with("postgres://") && url.contains("@postgres:"),
            "{what}: {url}"
        );
        urls.insert(url.clone());
        assert_eq!(
            listen_port(&service.environment["CALLVIEW_LISTEN"]),
            exposed,
            "{what}"
        );
        let timeout: u64 = service
            .environment
            .get("CALLVIEW_SHUTDOWN_TIMEOUT")
            .map_or(bound, |t| t.parse().unwrap());
        let grace = service.stop_grace_secs.expect("stop_grace_period");
        assert!(
            grace > timeout,
            "{what}: SIGKILL before the server's own bound"
        );
        let interval: u64 = service.environment["CALLVIEW_SYNC_INTERVAL"]
            .parse()
            .unwrap();
        if interval > 0 {
            syncing += 1;
        } else {
            assert!(command.contains(&"--no-initial-sync".to_owned()), "{what}");
        }
    }
    assert_eq!(urls.len(), 1, "one database: {urls:?}");
    assert_eq!(syncing, 1, "one instance runs the sync schedule");
    assert_eq!(
        services["postgres"].image.as_deref(),
        Some("postgres:15"),
        "{services:?}"
    );

    // The proxy: its configuration names the two instances on the exposed
    // port, and serves the event stream unbuffered.
    let proxy = &services["proxy"];
    let mount = proxy
        .volumes
        .iter()
        .find(|v| v.contains("deploy/nginx.conf"))
        .expect("the proxy mounts deploy/nginx.conf");
    assert!(mount.ends_with(":ro"), "{mount}");
    let nginx = read("deploy/nginx.conf");
    for (name, _) in &instances {
        assert!(
            nginx.contains(&format!("server {name}:{exposed}")),
            "{name}"
        );
    }
    let events = nginx
        .split(&format!("location = {} {{", callview_server::EVENTS_PATH))
        .nth(1)
        .expect("a location for the event stream")
        .split('}')
        .next()
        .unwrap();
    assert!(events.contains("proxy_buffering off"), "{events}");
    assert!(events.contains("proxy_read_timeout"), "{events}");
    assert!(callview_server::webhook::CALL_STATUS_PATH.starts_with("/webhooks/"));
    assert!(nginx.contains("location /webhooks/"));
    assert!(
        nginx.contains("X-Forwarded-Proto"),
        "webhook signatures need it"
    );

    // The example env file: variables callview reads, plus the password
    // compose puts into DATABASE_URL.
    let example = read("deploy/callview.env.example");
    let keys: Vec<String> = example
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
        .filter(|k| k.chars().all(|c| c.is_ascii_uppercase() || c == '_') && !k.is_empty())
        .filter(|k| k != "POSTGRES_PASSWORD")
        .collect();
    assert!(keys.contains(&"CALLVIEW_API_TOKEN".to_owned()), "{keys:?}");
    check_env(keys, &["serve"], "deploy/callview.env.example");
    assert!(read("compose.yaml").contains("${POSTGRES_PASSWORD"));
    assert!(example.contains("POSTGRES_PASSWORD="));
    assert!(read(".gitignore").lines().any(|l| l.trim() == ".env"));
}

#[test]
fn the_systemd_unit_uses_the_binarys_commands_and_variables() {
    let unit = read("deploy/callview.service");
    let values = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
            .collect()
    };
    let serve_help = accepts(&["serve"]);
    let mut starts = values("ExecStart");
    starts.extend(values("ExecStartPre"));
    assert!(!starts.is_empty());
    let mut serves = false;
    for exec in &starts {
        let words: Vec<String> = exec.split_whitespace().map(str::to_owned).collect();
        assert!(words[0].ends_with("/callview"), "{exec}");
        let path = check_command(&words[1..], "callview.service");
        serves |= path == ["serve"];
    }
    assert!(serves, "ExecStart runs `callview serve`");
    for env in values("Environment") {
        let (key, _) = env.split_once('=').unwrap();
        check_env([key.to_owned()], &["serve"], "callview.service Environment");
    }
    assert_eq!(
        values("EnvironmentFile"),
        ["/etc/callview/callview.env"],
        "secrets from an environment file"
    );
    assert!(values("User").iter().all(|u| u != "root"));
    let bound: u64 = default_of(&serve_help.text, "shutdown-timeout")
        .parse()
        .unwrap();
    let stop: u64 = values("TimeoutStopSec")[0].parse().unwrap();
    assert!(stop > bound, "systemd kills after the server's bound");
    assert_eq!(values("KillSignal"), ["SIGTERM"]);
    for hardening in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
    ] {
        assert!(unit.lines().any(|l| l == hardening), "{hardening}");
    }

    // systemd's own reading of the unit, where systemd is installed: no
    // unknown section, key or value (the binary and user are not here).
    let analyze = Command::new("systemd-analyze")
        .arg("verify")
        .arg(root().join("deploy/callview.service"))
        .output();
    if let Ok(output) = analyze {
        let text = String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout);
        for line in text.lines() {
            assert!(
                line.contains("is not executable") || line.trim().is_empty(),
                "systemd-analyze verify: {line}"
            );
        }
    }
}

#[test]
fn the_example_config_file_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let output = callview(dir.path())
        .args(["config", "check", "--json", "--config"])
        .arg(root().join("deploy/callview.toml.example"))
        .env("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000")
        .env("TWILIO_AUTH_TOKEN", "packaging-test-token")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    let settings = report["settings"].as_array().unwrap();
    let source = |key: &str| {
        settings
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("{key}: {report}"))["source"]
            .clone()
    };
    for key in [
        "database_url",
        "listen",
        "timezone",
        "recording_cache",
        "owned_numbers",
    ] {
        assert_eq!(source(key), "file", "{key}");
    }
    assert_eq!(source("TWILIO_AUTH_TOKEN"), "env TWILIO_AUTH_TOKEN");
    assert!(!stdout.contains("packaging-test-token"), "{stdout}");
}
