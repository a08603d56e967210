//! Built front-end assets: Vite writes hashed file names and a manifest
//! that maps each entry to them; pages link through it.

use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Default)]
pub struct Assets {
    pub script: Option<String>,
    pub stylesheets: Vec<String>,
}

#[derive(Deserialize)]
struct ManifestEntry {
    file: String,
    #[serde(default)]
    css: Vec<String>,
}

const ENTRY: &str = "main.js";

impl Assets {
    /// Reads `static/.vite/manifest.json`. Without it (the front end was not
    /// built) pages still render, unstyled, and a warning says why.
    pub fn load(static_dir: &Path) -> Self {
        let path = static_dir.join(".vite").join("manifest.json");
        let manifest = std::fs::read_to_string(&path).ok().and_then(|text| {
            serde_json::from_str::<std::collections::HashMap<String, ManifestEntry>>(&text).ok()
        });
        match manifest.and_then(|mut m| m.remove(ENTRY)) {
            Some(entry) => Self {
                script: Some(format!("/static/{}", entry.file)),
                stylesheets: entry
                    .css
                    .into_iter()
                    .map(|css| format!("/static/{css}"))
                    .collect(),
            },
            None => {
                tracing::warn!(
                    manifest = %path.display(),
                    "front-end assets are not built; run `npm ci && npm run build` (make setup)"
                );
                Self::default()
            }
        }
    }
}
