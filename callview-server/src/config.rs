//! Settings from a TOML file as well as flags and the environment
//! (`--config callview.toml`, or `CALLVIEW_CONFIG`).
//!
//! Precedence, highest first: a flag on the command line, its environment
//! variable, the config file, the built-in default. The file's keys are the
//! long flags with `_` for `-` (`database_url`, `listen`, `api_token`,
//! `sync_interval`, ...), derived from the clap [`Command`] itself, so a
//! flag added to the command line is a key of the file at once. Top-level
//! keys apply to every command that has the flag; a table named after a
//! subcommand (`[serve]`, `[sync]`, `[contacts.import]`) holds keys for
//! that command only and wins over the top level. A key no command knows is
//! an error naming it (and its line).
//!
//! ```toml
//! database_url = "postgres://callview@db/callview"
//! timezone = "Europe/Paris"
//! owned_numbers = ["+1 617 500 6181", "+1 617 500 6182"]
//!
//! [serve]
//! listen = "0.0.0.0:3000"
//! sync_interval = 120
//! ```
//!
//! The mechanism: the arguments are parsed once; every file value whose
//! flag was not given on the command line or in the environment (clap's
//! [`ValueSource`]) and does not conflict with one that was is added as
//! `--flag=value`, and the arguments are parsed again, so file values go
//! through the same parsers and checks as flags. [`Resolved`] remembers
//! which values came from the file, for `callview config check`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};

/// The id of the argument naming the config file (`--config`).
pub const CONFIG_ARG: &str = "config";

/// The arguments resolved from flags, environment, config file and defaults.
/// Its `Debug` leaves the values out (they hold secrets).
pub struct Resolved {
    /// The final matches: build the command line's types from them
    /// (`FromArgMatches::from_arg_matches`).
    pub matches: ArgMatches,
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    /// The ids of the arguments whose value came from the file.
    pub from_file: BTreeSet<String>,
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved")
            .field("file", &self.file)
            .field("from_file", &self.from_file)
            .finish_non_exhaustive()
    }
}

/// Why the settings could not be resolved.
#[derive(Debug)]
pub enum ConfigError {
    /// The command line (or a value the file gave it) is wrong; clap's
    /// error, or `--help` / `--version` asked for.
    Clap(clap::Error, Option<String>),
    /// The config file cannot be read or holds something no command takes.
    File(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Clap(e, None) => write!(f, "{e}"),
            Self::Clap(e, Some(note)) => write!(f, "{}\n{note}", e.to_string().trim_end()),
            Self::File(message) => write!(f, "error: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// Prints the error (or the help asked for) and exits: 0 for help and
    /// version, 2 otherwise (clap's usage error code).
    pub fn exit(&self) -> ! {
        match self {
            Self::Clap(e, None) => e.exit(),
            _ => {
                eprintln!("{self}");
                std::process::exit(2)
            }
        }
    }
}

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A flag on the command line.
    Flag,
    /// The named environment variable.
    Env(String),
    /// The config file.
    File,
    /// The built-in default.
    Default,
    /// Not set at all.
    Unset,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag => f.write_str("flag"),
            Self::Env(name) => write!(f, "env {name}"),
            Self::File => f.write_str("file"),
            Self::Default => f.write_str("default"),
            Self::Unset => f.write_str("unset"),
        }
    }
}

/// One effective setting, as `callview config check` prints it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Setting {
    /// The key (the long flag with `_`).
    pub key: String,
    /// The value, secrets redacted (`None`: unset).
    pub value: Option<String>,
    /// Where it came from (`flag`, `env NAME`, `file`, `default`, `unset`).
    pub source: String,
    /// Whether the value is a secret (shown redacted).
    pub secret: bool,
}

/// The key of a long flag: `database-url` → `database_url`.
fn key_of(long: &str) -> String {
    long.replace('-', "_")
}

/// Whether an argument can be set from the file.
fn settable(arg: &clap::Arg) -> bool {
    !arg.is_positional()
        && arg.get_long().is_some()
        && !matches!(
            arg.get_action(),
            ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
        )
        && arg.get_id() != CONFIG_ARG
}

/// Whether a setting is a secret, shown redacted: flags whose environment
/// values clap hides, and any key naming a token, secret or password.
pub fn is_secret(arg: &clap::Arg) -> bool {
    let key = arg.get_id().as_str();
    arg.is_hide_env_values_set()
        || ["token", "secret", "password"]
            .iter()
            .any(|word| key.contains(word))
}

/// A value as shown: database URLs without their password, other secrets
/// as `***`.
pub fn redact_value(key: &str, secret: bool, value: &str) -> String {
    if key.contains("database_url") || key.ends_with("_url") && value.contains('@') {
        crate::db::redact(value)
    } else if secret && !value.is_empty() {
        "***".to_owned()
    } else {
        value.to_owned()
    }
}

/// The subcommand path of `matches` (`["contacts", "import"]`), the leaf
/// command and its matches.
fn leaf<'a>(
    cmd: &'a Command,
    matches: &'a ArgMatches,
) -> (Vec<String>, &'a Command, &'a ArgMatches) {
    let (mut cmd, mut matches) = (cmd, matches);
    let mut path = Vec::new();
    while let Some((name, sub)) = matches.subcommand() {
        let Some(next) = cmd.find_subcommand(name) else {
            break;
        };
        path.push(name.to_owned());
        cmd = next;
        matches = sub;
    }
    (path, cmd, matches)
}

/// Resolves `args` (the program name first) against `cmd`: flags and
/// environment, then the config file `--config` / its environment variable
/// names, then defaults. See the module documentation.
pub fn resolve<I, T>(cmd: Command, args: I) -> Result<Resolved, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut cmd = cmd;
    cmd.build();
    let first = cmd
        .clone()
        .try_get_matches_from(&args)
        .map_err(|e| ConfigError::Clap(e, None))?;
    let (path, leaf_cmd, leaf_matches) = leaf(&cmd, &first);
    let file = leaf_matches
        .try_get_one::<PathBuf>(CONFIG_ARG)
        .ok()
        .flatten()
        .or_else(|| first.try_get_one::<PathBuf>(CONFIG_ARG).ok().flatten())
        .cloned();
    let Some(file) = file else {
        return Ok(Resolved {
            matches: first,
            file: None,
            from_file: BTreeSet::new(),
        });
    };
    let values = read_file(&cmd, &file)?;
    let values = values_for(&values, &path);

    let mut extra: Vec<OsString> = Vec::new();
    let mut from_file = BTreeSet::new();
    let explicit = |id: &str| {
        matches!(
            leaf_matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    for arg in leaf_cmd.get_arguments().filter(|a| settable(a)) {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else { continue };
        let Some(value) = values.get(&key_of(long)) else {
            continue;
        };
        if explicit(id)
            || leaf_cmd
                .get_arg_conflicts_with(arg)
                .iter()
                .any(|other| explicit(other.get_id().as_str()))
        {
            continue;
        }
        let before = extra.len();
        push_value(&mut extra, arg, long, &value.value).map_err(|message| {
            ConfigError::File(format!("{}: {}: {message}", file.display(), value.at))
        })?;
        if extra.len() > before {
            from_file.insert(id.to_owned());
        }
    }
    if extra.is_empty() {
        return Ok(Resolved {
            matches: first,
            file: Some(file),
            from_file,
        });
    }
    // Before a `--` (what follows it is positional).
    let at = args
        .iter()
        .position(|a| a == "--")
        .unwrap_or(args.len())
        .max(1);
    let mut again = args;
    again.splice(at..at, extra);
    let matches = cmd.clone().try_get_matches_from(&again).map_err(|e| {
        // The flag clap names (`--listen <LISTEN>`), when the file set it.
        let named = match e.get(clap::error::ContextKind::InvalidArg) {
            Some(clap::error::ContextValue::String(flag)) => Some(flag.clone()),
            _ => None,
        };
        let culprit = named.as_deref().and_then(|flag| {
            leaf_cmd.get_arguments().find(|a| {
                from_file.contains(a.get_id().as_str())
                    && a.get_long().is_some_and(|long| {
                        flag == format!("--{long}") || flag.starts_with(&format!("--{long} "))
                    })
            })
        });
        let note = match culprit.and_then(|a| a.get_long()) {
            Some(long) => format!(
                "note: the value of `{}` comes from the config file {} ({})",
                key_of(long),
                file.display(),
                values.get(&key_of(long)).map_or("", |v| v.at.as_str())
            ),
            None => format!(
                "note: the config file {} set: {}",
                file.display(),
                from_file
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        ConfigError::Clap(e, Some(note))
    })?;
    Ok(Resolved {
        matches,
        file: Some(file),
        from_file,
    })
}

/// Adds the flag for `value` to `extra`.
fn push_value(
    extra: &mut Vec<OsString>,
    arg: &clap::Arg,
    long: &str,
    value: &FileValue,
) -> Result<(), String> {
    match (arg.get_action(), value) {
        (ArgAction::SetTrue, FileValue::Bool(true))
        | (ArgAction::SetFalse, FileValue::Bool(false)) => {
            extra.push(format!("--{long}").into());
            Ok(())
        }
        (ArgAction::SetTrue | ArgAction::SetFalse, FileValue::Bool(_)) => Ok(()),
        (ArgAction::SetTrue | ArgAction::SetFalse, _) => Err("expects true or false".to_owned()),
        (ArgAction::Append, FileValue::List(items)) => {
            extra.extend(items.iter().map(|item| format!("--{long}={item}").into()));
            Ok(())
        }
        (_, FileValue::List(_)) => Err("expects one value, not a list".to_owned()),
        (_, FileValue::Bool(b)) => {
            extra.push(format!("--{long}={b}").into());
            Ok(())
        }
        (_, FileValue::Text(text)) => {
            extra.push(format!("--{long}={text}").into());
            Ok(())
        }
    }
}

/// A value of the file, as text for the flag's own parser.
#[derive(Clone, Debug, PartialEq)]
enum FileValue {
    Text(String),
    Bool(bool),
    List(Vec<String>),
}

/// A value with where it was written (`line 3, key serve.listen`).
#[derive(Clone, Debug)]
struct Located {
    value: FileValue,
    at: String,
}

/// The file's values: top-level keys under `[]`, a subcommand's under its path.
type FileValues = BTreeMap<Vec<String>, BTreeMap<String, Located>>;

/// The values for the command at `path`: top level, overridden by each
/// table along the path.
fn values_for(values: &FileValues, path: &[String]) -> BTreeMap<String, Located> {
    let mut out = BTreeMap::new();
    for depth in 0..=path.len() {
        if let Some(table) = values.get(&path[..depth]) {
            out.extend(table.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    out
}

/// The line (1-based) of byte `offset` in `text`.
fn line_of(text: &str, offset: Option<usize>) -> String {
    match offset {
        Some(offset) => format!(
            "line {}",
            text[..offset.min(text.len())].matches('\n').count() + 1
        ),
        None => "a value".to_owned(),
    }
}

/// Reads and checks the file against every command: each key must be a
/// flag of some command (top level) or of the table's command.
fn read_file(cmd: &Command, file: &Path) -> Result<FileValues, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        ConfigError::File(format!(
            "cannot read the config file {}: {e}",
            file.display()
        ))
    })?;
    let doc = toml_edit::Document::parse(text.clone()).map_err(|e| {
        ConfigError::File(format!(
            "the config file {} is not valid TOML: {e}",
            file.display()
        ))
    })?;
    let mut values = FileValues::new();
    read_table(cmd, &text, doc.as_table(), &mut Vec::new(), &mut values)
        .map_err(|message| ConfigError::File(format!("{}: {message}", file.display())))?;
    Ok(values)
}

/// Every key a command (and, at the top level, any of its subcommands) takes.
fn known_keys(cmd: &Command, deep: bool, into: &mut BTreeSet<String>) {
    into.extend(
        cmd.get_arguments()
            .filter(|a| settable(a))
            .filter_map(|a| a.get_long().map(key_of)),
    );
    if deep {
        for sub in cmd.get_subcommands() {
            known_keys(sub, true, into);
        }
    }
}

fn read_table(
    cmd: &Command,
    text: &str,
    table: &dyn toml_edit::TableLike,
    path: &mut Vec<String>,
    values: &mut FileValues,
) -> Result<(), String> {
    let mut known = BTreeSet::new();
    known_keys(cmd, path.is_empty(), &mut known);
    for (raw_key, item) in table.iter() {
        let key = key_of(raw_key);
        let at_line = line_of(
            text,
            table
                .key(raw_key)
                .and_then(|k| k.span())
                .or_else(|| item.span())
                .map(|s| s.start),
        );
        let dotted = path
            .iter()
            .map(String::as_str)
            .chain([raw_key])
            .collect::<Vec<_>>()
            .join(".");
        if let Some(sub) = item.as_table_like() {
            let Some(sub_cmd) = cmd.find_subcommand(raw_key) else {
                return Err(format!(
                    "{at_line}: [{dotted}] is not a callview command (tables are named after commands: [serve], [sync], ...)"
                ));
            };
            path.push(sub_cmd.get_name().to_owned());
            read_table(sub_cmd, text, sub, path, values)?;
            path.pop();
            continue;
        }
        if key == CONFIG_ARG {
            return Err(format!(
                "{at_line}: `{dotted}` cannot be set in the config file itself"
            ));
        }
        if !known.contains(&key) {
            let hint = closest(&key, &known)
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            let scope = if path.is_empty() {
                "no callview command takes it".to_owned()
            } else {
                format!("`callview {}` does not take it", path.join(" "))
            };
            return Err(format!(
                "{at_line}: unknown setting `{dotted}`: {scope}{hint}"
            ));
        }
        let value = file_value(item).ok_or_else(|| {
            format!(
                "{at_line}: `{dotted}` must be a string, number, boolean, date or a list of them"
            )
        })?;
        values.entry(path.clone()).or_default().insert(
            key,
            Located {
                value,
                at: format!("{at_line}, `{dotted}`"),
            },
        );
    }
    Ok(())
}

fn scalar(value: &toml_edit::Value) -> Option<String> {
    use toml_edit::Value;
    match value {
        Value::String(s) => Some(s.value().clone()),
        Value::Integer(i) => Some(i.value().to_string()),
        Value::Float(f) => Some(f.value().to_string()),
        Value::Boolean(b) => Some(b.value().to_string()),
        Value::Datetime(d) => Some(d.value().to_string()),
        Value::Array(_) | Value::InlineTable(_) => None,
    }
}

fn file_value(item: &toml_edit::Item) -> Option<FileValue> {
    use toml_edit::Value;
    match item.as_value()? {
        Value::Boolean(b) => Some(FileValue::Bool(*b.value())),
        Value::Array(items) => items
            .iter()
            .map(scalar)
            .collect::<Option<Vec<_>>>()
            .map(FileValue::List),
        other => scalar(other).map(FileValue::Text),
    }
}

/// The known key nearest to `key` (edit distance at most 3), or else the
/// longest one it starts with or that starts with it.
fn closest<'a>(key: &str, known: &'a BTreeSet<String>) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (distance(key, k), k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k.as_str())
        .or_else(|| {
            known
                .iter()
                .filter(|k| key.starts_with(k.as_str()) || k.starts_with(key))
                .max_by_key(|k| k.len())
                .map(String::as_str)
        })
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            previous = here;
        }
    }
    row[b.len()]
}

/// The effective settings of the command `resolved` ran (its subcommand's
/// flags and the global ones), with where each value came from and secrets
/// redacted.
pub fn settings(cmd: Command, resolved: &Resolved) -> Vec<Setting> {
    let mut cmd = cmd;
    cmd.build();
    let (_, leaf_cmd, matches) = leaf(&cmd, &resolved.matches);
    let mut out: Vec<Setting> = leaf_cmd
        .get_arguments()
        .filter(|a| settable(a))
        .filter_map(|arg| {
            let id = arg.get_id().as_str();
            let key = key_of(arg.get_long()?);
            let secret = is_secret(arg);
            let value = matches.get_raw(id).map(|values| {
                values
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(",")
            });
            let source = if resolved.from_file.contains(id) {
                Source::File
            } else {
                match matches.value_source(id) {
                    Some(ValueSource::CommandLine) => Source::Flag,
                    Some(ValueSource::EnvVariable) => Source::Env(
                        arg.get_env()
                            .map(|e| e.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    ),
                    Some(ValueSource::DefaultValue) => Source::Default,
                    _ => Source::Unset,
                }
            };
            Some(Setting {
                value: value.map(|v| redact_value(&key, secret, &v)),
                key,
                source: source.to_string(),
                secret,
            })
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// Where the value of the argument `id` of the command `resolved` ran came
/// from.
pub fn source_of(cmd: Command, resolved: &Resolved, id: &str) -> Source {
    let mut cmd = cmd;
    cmd.build();
    let (_, leaf_cmd, matches) = leaf(&cmd, &resolved.matches);
    if resolved.from_file.contains(id) {
        return Source::File;
    }
    match matches.value_source(id) {
        Some(ValueSource::CommandLine) => Source::Flag,
        Some(ValueSource::EnvVariable) => Source::Env(
            leaf_cmd
                .get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_env())
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        Some(ValueSource::DefaultValue) => Source::Default,
        _ => Source::Unset,
    }
}

/// The global flags given explicitly on the command line (not from the
/// file), as `--flag=value` arguments: `config check` re-resolves them for
/// the command it checks.
pub fn explicit_globals(cmd: Command, resolved: &Resolved) -> Vec<OsString> {
    let mut cmd = cmd;
    cmd.build();
    let (_, leaf_cmd, matches) = leaf(&cmd, &resolved.matches);
    let mut out = Vec::new();
    for arg in leaf_cmd.get_arguments().filter(|a| a.is_global_set()) {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else { continue };
        if resolved.from_file.contains(id)
            || matches.value_source(id) != Some(ValueSource::CommandLine)
        {
            continue;
        }
        match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => out.push(format!("--{long}").into()),
            _ => {
                for value in matches.get_raw(id).into_iter().flatten() {
                    let mut flag = OsString::from(format!("--{long}="));
                    flag.push(value);
                    out.push(flag);
                }
            }
        }
    }
    out
}

/// The settings as a table (`key  value  source`).
pub fn render(settings: &[Setting]) -> String {
    let width = settings.iter().map(|s| s.key.len()).max().unwrap_or(0);
    let value_width = settings
        .iter()
        .map(|s| s.value.as_deref().unwrap_or("-").chars().count())
        .max()
        .unwrap_or(0)
        .min(60);
    let mut out = String::new();
    for s in settings {
        out.push_str(&format!(
            "  {:<width$}  {:<value_width$}  ({})\n",
            s.key,
            s.value.as_deref().unwrap_or("-"),
            s.source
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction};

    fn cmd() -> Command {
        Command::new("app")
            .arg(
                Arg::new(CONFIG_ARG)
                    .long("config")
                    .env("APP_TEST_CONFIG_UNSET")
                    .global(true)
                    .value_parser(clap::value_parser!(PathBuf)),
            )
            .arg(
                Arg::new("database_url")
                    .long("database-url")
                    .env("APP_TEST_DATABASE_URL_UNSET")
                    .hide_env_values(true)
                    .global(true),
            )
            .subcommand(
                Command::new("serve")
                    .arg(
                        Arg::new("listen")
                            .long("listen")
                            .default_value("127.0.0.1:3000")
                            .value_parser(clap::value_parser!(std::net::SocketAddr)),
                    )
                    .arg(Arg::new("api_token").long("api-token"))
                    .arg(Arg::new("demo").long("demo").action(ArgAction::SetTrue))
                    .arg(
                        Arg::new("owned")
                            .long("owned-numbers")
                            .action(ArgAction::Append),
                    )
                    .arg(
                        Arg::new("interval")
                            .long("sync-interval")
                            .value_parser(clap::value_parser!(u64)),
                    ),
            )
            .subcommand(
                Command::new("sync")
                    .arg(Arg::new("since").long("since").conflicts_with("preset"))
                    .arg(Arg::new("preset").long("preset")),
            )
    }

    fn file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callview.toml");
        std::fs::write(&path, text).unwrap();
        let path = path.display().to_string();
        (dir, path)
    }

    fn setting<'a>(settings: &'a [Setting], key: &str) -> &'a Setting {
        settings.iter().find(|s| s.key == key).unwrap()
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let (_dir, path) = file(
            "database_url = \"postgres://app:hunter2@db/calls\"\n\
             [serve]\nlisten = \"0.0.0.0:4000\"\napi_token = \"s3cret\"\ndemo = true\n\
             owned_numbers = [\"+1 617 500 6181\", \"+16175006182\"]\nsync-interval = 90\n",
        );
        let r = resolve(
            cmd(),
            ["app", "--config", &path, "serve", "--api-token", "flag"],
        )
        .unwrap();
        let (_, serve) = r.matches.subcommand().unwrap();
        assert_eq!(
            serve
                .get_one::<std::net::SocketAddr>("listen")
                .unwrap()
                .to_string(),
            "0.0.0.0:4000"
        );
        assert_eq!(serve.get_one::<String>("api_token").unwrap(), "flag");
        assert!(serve.get_flag("demo"));
        assert_eq!(serve.get_one::<u64>("interval"), Some(&90));
        assert_eq!(
            serve
                .get_many::<String>("owned")
                .unwrap()
                .cloned()
                .collect::<Vec<_>>(),
            ["+1 617 500 6181", "+16175006182"]
        );
        let shown = settings(cmd(), &r);
        assert_eq!(setting(&shown, "listen").source, "file");
        assert_eq!(setting(&shown, "api_token").source, "flag");
        assert_eq!(setting(&shown, "api_token").value.as_deref(), Some("***"));
        assert_eq!(
            setting(&shown, "database_url").value.as_deref(),
            Some("postgres://app:***@db/calls")
        );
        let shown = render(&shown);
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret") && !shown.contains("flag "),
            "{shown}"
        );

        // Without the file: defaults.
        let r = resolve(cmd(), ["app", "serve"]).unwrap();
        let shown = settings(cmd(), &r);
        assert_eq!(setting(&shown, "listen").source, "default");
        assert_eq!(setting(&shown, "api_token").source, "unset");
    }

    #[test]
    fn a_flag_given_wins_over_a_conflicting_file_value() {
        let (_dir, path) = file("[sync]\nsince = \"30d\"\n");
        let r = resolve(
            cmd(),
            ["app", "sync", "--config", &path, "--preset", "manual"],
        )
        .unwrap();
        let (_, sync) = r.matches.subcommand().unwrap();
        assert_eq!(sync.get_one::<String>("since"), None);
        let r = resolve(cmd(), ["app", "sync", "--config", &path]).unwrap();
        let (_, sync) = r.matches.subcommand().unwrap();
        assert_eq!(sync.get_one::<String>("since").unwrap(), "30d");
    }

    #[test]
    fn top_level_keys_apply_to_commands_that_take_them() {
        // `listen` is serve's: `sync` ignores it.
        let (_dir, path) = file("listen = \"0.0.0.0:4000\"\n");
        assert!(resolve(cmd(), ["app", "--config", &path, "sync"]).is_ok());
        let r = resolve(cmd(), ["app", "--config", &path, "serve"]).unwrap();
        assert_eq!(r.from_file.iter().collect::<Vec<_>>(), ["listen"]);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_naming_them() {
        let error = |text: &str| {
            let (_dir, path) = file(text);
            resolve(cmd(), ["app", "--config", &path, "serve"])
                .unwrap_err()
                .to_string()
        };
        let e = error("\n\nlistn = \"0.0.0.0:1\"\n");
        assert!(e.contains("unknown setting `listn`"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("did you mean `listen`"), "{e}");
        let e = error("[sync]\nlisten = \"0.0.0.0:1\"\n");
        assert!(
            e.contains("`sync.listen`") && e.contains("`callview sync` does not take it"),
            "{e}"
        );
        let e = error("[nope]\nx = 1\n");
        assert!(e.contains("[nope] is not a callview command"), "{e}");
        let e = error("config = \"other.toml\"\n");
        assert!(e.contains("cannot be set in the config file"), "{e}");
        let e = error("[serve]\nlisten = \"not an address\"\n");
        assert!(e.contains("--listen"), "{e}");
        assert!(
            e.contains("the value of `listen` comes from the config file")
                && e.contains("callview.toml (line 2, `serve.listen`)"),
            "{e}"
        );
        let e = error("[serve]\ndemo = \"yes\"\n");
        assert!(e.contains("true or false") && e.contains("line 2"), "{e}");
        let e = error("[serve\n");
        assert!(e.contains("not valid TOML"), "{e}");
        let (_dir, path) = file("");
        let missing = format!("{path}.missing");
        let e = resolve(cmd(), ["app", "--config", &missing, "serve"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read the config file"), "{e}");
    }

    #[test]
    fn explicit_globals_are_kept_for_a_second_resolution() {
        let (_dir, path) = file("database_url = \"sqlite://file.db\"\n");
        let r = resolve(cmd(), ["app", "--config", &path, "serve"]).unwrap();
        let globals = explicit_globals(cmd(), &r);
        assert_eq!(globals, [OsString::from(format!("--config={path}"))]);
        let r = resolve(
            cmd(),
            ["app", "--database-url", "sqlite://flag.db", "serve"],
        )
        .unwrap();
        assert_eq!(
            explicit_globals(cmd(), &r),
            [OsString::from("--database-url=sqlite://flag.db")]
        );
    }

    #[test]
    fn distances() {
        assert_eq!(distance("listn", "listen"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("database_ur", "database_url"), 1);
    }
}
