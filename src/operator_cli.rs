//! `lastmile operator add NAME --role ROLE [--campus ID]…`, `operator list`,
//! `operator revoke NAME`: run against the storage while the service is
//! stopped (sled allows one process); while it runs, the same is
//! `POST /api/v1/admin/operators` and `…/{name}/revoke` with an admin token.

use lastmile_actors::auth::operators::{add_to, revoke_in};
use lastmile_actors::domain::{OperatorName, Role};

use crate::config::Settings;

/// Usage line of the subcommand.
pub const USAGE: &str = "usage: lastmile operator add NAME --role viewer|dispatcher|finance|admin [--campus ID]... | list | revoke NAME [--config FILE]";

/// What to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Add an operator.
    Add {
        /// Name.
        name: OperatorName,
        /// Role.
        role: Role,
        /// Campus limits.
        campuses: Vec<String>,
    },
    /// List operators.
    List,
    /// Revoke an operator.
    Revoke(OperatorName),
}

/// Parses the arguments after `operator`; answers the command and `--config`.
pub fn parse(args: &[String]) -> Result<(Command, Option<std::path::PathBuf>), String> {
    let mut rest = args.iter();
    let verb = rest.next().ok_or(USAGE)?;
    let (mut name, mut role, mut campuses, mut config) = (None, None, Vec::new(), None);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--role" => role = Some(rest.next().ok_or("--role needs a role")?.clone()),
            "--campus" => {
                let id = rest.next().ok_or("--campus needs an id")?;
                if !lastmile_actors::campus::is_campus_id(id) {
                    return Err(format!("--campus {id}: a campus id is 1-16 of a-z, 0-9, -"));
                }
                campuses.push(id.clone());
            }
            "--config" => config = Some(rest.next().ok_or("--config needs a FILE")?.into()),
            other if name.is_none() && !other.starts_with("--") => name = Some(other.to_owned()),
            other => return Err(format!("unknown argument {other} ({USAGE})")),
        }
    }
    let named = |n: Option<String>| -> Result<OperatorName, String> {
        let n = n.ok_or_else(|| format!("a NAME is required ({USAGE})"))?;
        let parsed = OperatorName::parse(&n).map_err(|e| e.to_string())?;
        if parsed.as_str() == OperatorName::BOOTSTRAP {
            return Err("the name admin belongs to admin.token; choose another".into());
        }
        Ok(parsed)
    };
    let command = match verb.as_str() {
        "add" => Command::Add {
            name: named(name)?,
            role: role
                .as_deref()
                .and_then(Role::parse)
                .ok_or("--role must be viewer, dispatcher, finance or admin")?,
            campuses,
        },
        "list" => Command::List,
        "revoke" => Command::Revoke(named(name)?),
        other => return Err(format!("unknown operator command {other} ({USAGE})")),
    };
    Ok((command, config))
}

/// Runs a command on the configured storage; answers what to print.
pub fn run(command: Command, settings: &Settings) -> Result<String, String> {
    let store = settings.storage.open().map_err(|e| {
        format!(
            "{e} (is lastmile running on {}? then use POST /api/v1/admin/operators with an admin token)",
            settings.storage.location()
        )
    })?;
    let repo = store.operator_repo();
    let out = match command {
        Command::Add {
            name,
            role,
            campuses,
        } => {
            let served = lastmile_actors::campus::Campuses::load(&settings.campus.map)
                .map_err(|e| e.to_string())?;
            served.check_served(&campuses)?;
            let (record, token) =
                add_to(repo.as_ref(), name, role, campuses).map_err(|e| e.to_string())?;
            format!(
                "added operator {} ({}); token (shown once, keep it safe):\n{token}",
                record.name.as_str(),
                record.role
            )
        }
        Command::List => {
            let mut lines = vec!["name\trole\tcampuses\tadded\trevoked".to_owned()];
            for o in repo.all_operators().map_err(|e| e.to_string())? {
                lines.push(format!(
                    "{}\t{}\t{}\t{}\t{}",
                    o.name.as_str(),
                    o.role,
                    if o.campuses.is_empty() {
                        "all".into()
                    } else {
                        o.campuses.join(",")
                    },
                    o.created_at.date(),
                    o.revoked_at.map_or("-".into(), |t| t.date().to_string())
                ));
            }
            lines.join("\n")
        }
        Command::Revoke(name) => {
            let record = revoke_in(repo.as_ref(), &name).map_err(|e| e.to_string())?;
            format!("revoked operator {}", record.name.as_str())
        }
    };
    store.flush_blocking().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn commands_parse_and_bad_ones_say_why() {
        let (cmd, config) = parse(&args(
            "add li.lei --role finance --campus north --config x.toml",
        ))
        .expect("parses");
        assert_eq!(
            cmd,
            Command::Add {
                name: OperatorName::parse("li.lei").expect("name"),
                role: Role::Finance,
                campuses: vec!["north".into()],
            }
        );
        assert_eq!(config, Some("x.toml".into()));
        assert_eq!(parse(&args("list")).expect("list").0, Command::List);
        for bad in [
            "",
            "add li",
            "add li --role root",
            "add admin --role viewer",
            "revoke",
            "remove li",
            "add li --role viewer extra",
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad}");
        }
    }
}
