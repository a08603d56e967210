//! `ispd key rotate`: re-encrypting every stored secret under a new key.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::startup::require_migrated;
use super::KeyRotateArgs;
use crate::config::Config;
use crate::crypto::AppKey;
use crate::db::Databases;

/// `ispd key rotate`: the old key is the configured one (APP_KEY, else the
/// key file, which must exist already).
///
/// With APP_KEY set, no file is touched: the operator sets APP_KEY to the
/// new key. With the key file, the new key is written beside it
/// (`app.key.new`, 0600) *before* the commit and renamed over `app.key`
/// after it, so that at every moment the key the data needs is on disk.
/// A generated key is printed to stdout before the commit for the same
/// reason; if the rotation then fails, that key was never used.
pub(super) async fn rotate_key(config: &Config, args: KeyRotateArgs) -> anyhow::Result<()> {
    let key_file = config.data_dir.join("app.key");
    let (old, key_file) = match &config.app_key {
        Some(key) => (key.clone(), None),
        None => {
            if !key_file.exists() {
                bail!(
                    "APP_KEY is not set and there is no key file {}: there is no key to rotate from",
                    key_file.display()
                );
            }
            (AppKey::load_or_create(&key_file)?, Some(key_file))
        }
    };
    let new = match (&args.new_key, &args.new_key_file, args.generate) {
        (Some(text), _, _) => {
            Some(AppKey::from_base64(text).map_err(|p| anyhow::anyhow!("--new-key {p}"))?)
        }
        (None, Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--new-key-file: reading {}", path.display()))?;
            Some(
                AppKey::from_base64(&text)
                    .map_err(|p| anyhow::anyhow!("--new-key-file {}: {p}", path.display()))?,
            )
        }
        (None, None, true) => Some(AppKey::generate()),
        (None, None, false) => None,
    };
    let db = Databases::connect(config).await?;
    require_migrated(&db).await?;

    if args.dry_run {
        // A given new key is checked (it must differ), never stored or printed.
        let new = new.unwrap_or_else(AppKey::generate);
        let report = crate::keys::rotate(&db.main, &old, &new, true).await?;
        eprintln!("{report}");
        return Ok(());
    }
    let new = new.expect("clap requires a new key without --dry-run");
    if old == new {
        bail!("{}", crate::keys::RotateError::SameKey);
    }

    let staged = match &key_file {
        Some(path) => Some(stage_key_file(path, &new)?),
        None => None,
    };
    if args.generate {
        use std::io::Write;
        println!("{}", new.to_base64());
        std::io::stdout().flush().context("printing the new key")?;
    }
    let report = match crate::keys::rotate(&db.main, &old, &new, false).await {
        Ok(report) => report,
        Err(err) => {
            if let Some(staged) = &staged {
                let _ = std::fs::remove_file(staged);
            }
            if args.generate {
                eprintln!("ispd: nothing was changed; the key printed above was not used");
            }
            return Err(err.into());
        }
    };
    eprintln!("{report}");
    match (key_file, staged) {
        (Some(path), Some(staged)) => {
            std::fs::rename(&staged, &path).with_context(|| {
                format!(
                    "the secrets are re-encrypted, but {} could not replace {}: move it there by hand before starting ispd",
                    staged.display(),
                    path.display()
                )
            })?;
            sync_parent_dir(&path);
            eprintln!(
                "The new key is now in {}. Start serve and worker again.",
                path.display()
            );
        }
        _ => eprintln!(
            "Set APP_KEY to the new key for every ispd process (serve, worker, and their .env or \
             environment files), then start serve and worker again: the old key no longer decrypts \
             anything in this database."
        ),
    }
    Ok(())
}

/// Writes the new key beside the key file as `app.key.new` (mode 0600,
/// never overwriting: one left over from an interrupted rotation may hold
/// the key the data needs).
fn stage_key_file(path: &Path, key: &AppKey) -> anyhow::Result<PathBuf> {
    let staged = path.with_extension("key.new");
    if staged.exists() {
        bail!(
            "{} exists, left by an interrupted rotation: find out which key the data uses (`ispd key rotate --dry-run` with APP_KEY set to it succeeds), then remove the file",
            staged.display()
        );
    }
    AppKey::write_key_file(&staged, key)
        .with_context(|| format!("writing the new key to {}", staged.display()))?;
    Ok(staged)
}

/// Makes a rename durable (best effort; directories cannot be opened on
/// every platform).
fn sync_parent_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
}
