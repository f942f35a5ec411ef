//! `lastmile store copy --from SOURCE --to TARGET [--config FILE]`: moves a
//! store between engines while the service is stopped. SOURCE and TARGET
//! are each a sled directory or a `postgres://` URL; both are held for the
//! copy (one process per store), so a store in use is refused.

use std::path::PathBuf;
use std::time::Duration;

use lastmile_actors::storage::copy::{copy, Copied};
use lastmile_actors::storage::postgres::masked_url;
use lastmile_actors::storage::{Engine, StorageError};

use crate::config::Settings;

/// Usage line of the subcommand.
pub const USAGE: &str =
    "usage: lastmile store copy --from DIR|postgres://… --to DIR|postgres://… [--config FILE]";

/// Connections the copy opens to a database.
const POOL: usize = 4;

/// A store named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A sled directory.
    Sled(PathBuf),
    /// A PostgreSQL URL (may carry a password: shown masked).
    Postgres(String),
}

impl Location {
    /// A `postgres://` or `postgresql://` URL, else a directory.
    pub fn parse(arg: &str) -> Self {
        if arg.starts_with("postgres://") || arg.starts_with("postgresql://") {
            Location::Postgres(arg.to_owned())
        } else {
            Location::Sled(PathBuf::from(arg))
        }
    }

    /// How messages name it (a password masked).
    pub fn shown(&self) -> String {
        match self {
            Location::Sled(path) => path.display().to_string(),
            Location::Postgres(url) => masked_url(url),
        }
    }

    fn open(&self) -> Result<Engine, StorageError> {
        match self {
            Location::Sled(path) => Engine::sled(path, Duration::from_millis(1)),
            Location::Postgres(url) => Engine::postgres(url, POOL),
        }
    }
}

/// `store copy`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyArgs {
    /// Where from.
    pub from: Location,
    /// Where to.
    pub to: Location,
    /// `--config`, for `objects.local_dir` (share images beside sled).
    pub config: Option<PathBuf>,
}

/// Why a copy could not run (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// A store could not be opened: absent, in use, unreachable.
    #[error("cannot open the {which} {location}: {source}")]
    Open {
        /// `source` or `target`.
        which: &'static str,
        /// The store, masked.
        location: String,
        /// Why.
        source: StorageError,
    },
    /// Reading or writing failed midway (running again resumes).
    #[error("the copy stopped: {0} (running it again copies what is missing)")]
    Failed(#[source] StorageError),
}

/// Parses the arguments after `store`.
pub fn parse(args: &[String]) -> Result<CopyArgs, CopyError> {
    let usage = |what: &str| CopyError::Usage(format!("{what} ({USAGE})"));
    let mut rest = args.iter();
    if rest.next().map(String::as_str) != Some("copy") {
        return Err(usage("the store command is copy"));
    }
    let (mut from, mut to, mut config) = (None, None, None);
    while let Some(arg) = rest.next() {
        let mut value = || {
            rest.next()
                .cloned()
                .ok_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--from" => from = Some(Location::parse(&value()?)),
            "--to" => to = Some(Location::parse(&value()?)),
            "--config" => config = Some(PathBuf::from(value()?)),
            other => return Err(usage(&format!("unknown argument {other}"))),
        }
    }
    let (Some(from), Some(to)) = (from, to) else {
        return Err(usage("--from and --to are required"));
    };
    if from == to {
        return Err(usage("--from and --to name the same store"));
    }
    if let Location::Sled(path) = &from {
        if !path.join("db").exists() && !path.join("conf").exists() {
            return Err(CopyError::Usage(format!(
                "--from {}: no sled store there",
                path.display()
            )));
        }
    }
    Ok(CopyArgs { from, to, config })
}

/// Copies `args.from` into `args.to`; answers what it did.
pub fn run(args: &CopyArgs, settings: &Settings) -> Result<Copied, CopyError> {
    let open = |which, location: &Location| {
        location.open().map_err(|source| CopyError::Open {
            which,
            location: location.shown(),
            source,
        })
    };
    let source = open("source", &args.from)?;
    let target = open("target", &args.to)?;
    // Share images beside a sled store are in `objects.local_dir`.
    let public = settings.objects.local_dir.as_path();
    let copied = copy(
        source.dump(public).as_ref(),
        target.dump(public).as_ref(),
        target.ledger_repo().as_ref(),
    )
    .map_err(CopyError::Failed)?;
    target.flush_blocking().map_err(CopyError::Failed)?;
    Ok(copied)
}

/// What a copy prints: one line per kind, then the ledger and the verdict.
pub fn report(args: &CopyArgs, copied: &Copied) -> String {
    let mut out = format!("copied {} -> {}\n", args.from.shown(), args.to.shown());
    for k in &copied.kinds {
        out.push_str(&format!(
            "{:<18} {:>9} copied {:>9} already there   source {:>9}  target {:>9}\n",
            k.kind.name(),
            k.written,
            k.read - k.written,
            k.source,
            k.target
        ));
    }
    let ledger = &copied.ledger;
    out.push_str(&format!(
        "ledger on the target: {} ({} postings replayed, sum {} fen)\n",
        if ledger.balanced {
            "balanced"
        } else {
            "NOT balanced"
        },
        ledger.postings,
        ledger.sum_fen
    ));
    let differences = copied.differences();
    if differences.is_empty() {
        out.push_str("the target holds everything the source holds");
    } else {
        out.push_str("differences:");
        for d in differences {
            out.push_str(&format!("\n  {d}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn urls_are_databases_and_the_rest_directories() {
        assert_eq!(
            Location::parse("postgres://u:pw@h/db"),
            Location::Postgres("postgres://u:pw@h/db".into())
        );
        assert_eq!(Location::parse("./data"), Location::Sled("./data".into()));
        assert!(!Location::parse("postgres://u:secret@h/db")
            .shown()
            .contains("secret"));
    }

    #[test]
    fn both_ends_are_required_and_differ() {
        for bad in [
            "copy",
            "copy --from /tmp/a",
            "copy --to postgres://h/db",
            "move --from a --to b",
            "copy --from postgres://h/db --to postgres://h/db",
            "copy --from postgres://h/db --to x --colour red",
        ] {
            assert!(
                matches!(parse(&args(bad)), Err(CopyError::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_source_directory_without_a_store_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let cmd = format!("copy --from {} --to postgres://h/db", dir.path().display());
        assert!(
            matches!(parse(&args(&cmd)), Err(CopyError::Usage(m)) if m.contains("no sled store"))
        );
    }
}
