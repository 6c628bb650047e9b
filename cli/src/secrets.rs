//! `baton secrets`: the home's encrypted secret store, which `PARAMETER_STORE` and
//! `SECRETS_MANAGER` environment variables resolve from on one machine. Values are read from
//! standard input, never from the command line, where other users and the shell's history see
//! them; nothing here prints a value.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use baton::adapters::local::secret_files::SecretFiles;
use baton::ports::secrets::SecretKind;
use serde_json::json;

use crate::output::result;

fn kind(secrets_manager: bool) -> SecretKind {
    if secrets_manager { SecretKind::SecretsManager } else { SecretKind::ParameterStore }
}

/// Stores standard input (without one trailing newline) as `name`.
pub(crate) fn put(home: &Path, name: &str, secrets_manager: bool) -> Result<ExitCode> {
    if std::io::stdin().is_terminal() {
        eprintln!("Type the value of {name} (shown as you type), then press Ctrl-D:");
    }
    let mut value = String::new();
    std::io::stdin()
        .read_to_string(&mut value)
        .context("cannot read the value from standard input")?;
    let value = value.strip_suffix('\n').unwrap_or(&value);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        bail!(
            "the value of {name} is empty: give it on standard input, as in `printf %s VALUE | baton secrets put {name}`"
        );
    }
    let kind = kind(secrets_manager);
    SecretFiles::new(home).put(kind, name, value).context("cannot write the secret store")?;
    let stored = json!({"name": name, "type": kind.type_name()});
    result(&stored, format_args!("Stored {} {name}.", kind.type_name()));
    Ok(ExitCode::SUCCESS)
}

/// Lists the stored names with their kind.
pub(crate) fn list(home: &Path) -> Result<ExitCode> {
    let names = SecretFiles::new(home).list().context("cannot read the secret store")?;
    if crate::output::json() {
        let listed: Vec<_> = names
            .iter()
            .map(|(kind, name)| json!({"name": name, "type": kind.type_name()}))
            .collect();
        result(&json!({"secrets": listed}), "");
        return Ok(ExitCode::SUCCESS);
    }
    if crate::output::chosen() == crate::output::Output::Table {
        let rows: Vec<Vec<String>> = names
            .iter()
            .map(|(kind, name)| vec![kind.type_name().to_string(), name.clone()])
            .collect();
        println!("{}", crate::output::columns(&["TYPE", "NAME"], &rows));
        return Ok(ExitCode::SUCCESS);
    }
    if names.is_empty() {
        println!("No secrets in this home: add one with `baton secrets put NAME`.");
    }
    for (kind, name) in names {
        println!("{:<16} {name}", kind.type_name());
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes `name`.
pub(crate) fn delete(home: &Path, name: &str, secrets_manager: bool) -> Result<ExitCode> {
    let kind = kind(secrets_manager);
    if !SecretFiles::new(home).delete(kind, name).context("cannot write the secret store")? {
        bail!("there is no {} secret named {name} in this home", kind.type_name());
    }
    let deleted = json!({"name": name, "type": kind.type_name()});
    result(&deleted, format_args!("Deleted {} {name}.", kind.type_name()));
    Ok(ExitCode::SUCCESS)
}
