//! Finding an app's image in the sources (mirrors, OCI layouts, then the image's own registry,
//! first answer wins), bringing it into the store pinned as `<repository>@<digest>`, and the
//! trust check — the configured reference decides the policy's scope, wherever the bytes
//! came from.

use std::path::Path;

use oci_spec::distribution::Reference;
use wasmbox_image::layout::{Entry, Layout};
use wasmbox_image::registry::{Registry, Resolved};
use wasmbox_image::{ImageError, Store};
use wasmbox_trust::{Evidence, Verified};

use super::config::{App, Source};

/// Where an app's image was found, ready to be brought in.
pub enum Located {
    Registry { registry: Registry, at: Reference, resolved: Resolved },
    Layout { layout: Box<Layout>, entry: Entry },
}

pub struct Found {
    pub digest: String,
    /// Which source answered (for the log).
    pub from: String,
    pub located: Located,
}

/// No source had the image; each one's reason, in order.
pub struct NotFound(pub Vec<String>);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no source has it: {}", self.0.join("; "))
    }
}

/// `app.image` as it is named in a mirror.
fn at_mirror(image: &Reference, mirror: &str) -> Reference {
    match image.digest() {
        Some(d) => Reference::with_digest(mirror.to_string(), image.repository().to_string(), d.to_string()),
        None => Reference::with_tag(
            mirror.to_string(),
            image.repository().to_string(),
            image.tag().unwrap_or("latest").to_string(),
        ),
    }
}

/// The name the agent keeps an app's version under in the store.
pub fn pin(image: &Reference, digest: &str) -> Reference {
    Reference::with_digest(image.registry().to_string(), image.repository().to_string(), digest.to_string())
}

/// Asks the sources in order, then the image's own registry.
pub async fn locate(app: &App, sources: &[Source], scratch: &Path) -> Result<Found, NotFound> {
    let mut why = Vec::new();
    let own = Source::Mirror { registry: app.image.registry().to_string(), insecure: false };
    for source in sources.iter().chain(std::iter::once(&own)) {
        let result = match source {
            Source::Mirror { registry, insecure } => {
                let at = at_mirror(&app.image, registry);
                let client = match crate::commands::registry_client(&at, *insecure) {
                    Ok(c) => c,
                    Err(e) => {
                        why.push(format!("{source}: {e:#}"));
                        continue;
                    }
                };
                client.resolve(&at).await.map(|resolved| Found {
                    digest: resolved.digest.clone(),
                    from: source.to_string(),
                    located: Located::Registry { registry: client, at, resolved },
                })
            }
            Source::Layout(path) => in_layout(&app.image, path, scratch).map(|(layout, entry)| Found {
                digest: entry.manifest.digest().to_string(),
                from: source.to_string(),
                located: Located::Layout { layout: Box::new(layout), entry },
            }),
        };
        match result {
            Ok(found) => return Ok(found),
            Err(e) => why.push(format!("{source}: {}", one_line(&e))),
        }
    }
    Err(NotFound(why))
}

fn in_layout(image: &Reference, path: &Path, scratch: &Path) -> Result<(Layout, Entry), ImageError> {
    if !path.exists() {
        return Err(ImageError::NotFound(format!("{} (not mounted?)", path.display())));
    }
    let layout = Layout::open(path, scratch)?;
    let entry = layout.find(image).ok_or_else(|| ImageError::NotFound(wasmbox_image::display_reference(image)))?;
    Ok((layout, entry))
}

fn one_line(e: &ImageError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// Brings the found image into `store` pinned under the app's repository, with the
/// signatures the policy needs (fetched from where the image came from); returns them.
pub async fn bring(app: &App, found: Found, store: &Store, quiet: bool) -> anyhow::Result<Vec<Evidence>> {
    let pinned = pin(&app.image, &found.digest);
    let policy = crate::trust::load_policy()?;
    let wants_signatures = policy.as_ref().is_some_and(|p| wasmbox_image::admit::needs_signatures(p, &app.image));
    let evidence = match found.located {
        Located::Registry { registry, at, resolved } => {
            let evidence =
                if wants_signatures { registry.fetch_evidence(&at, &found.digest).await? } else { Vec::new() };
            let reporter = crate::progress::Reporter::new(quiet);
            // The blobs come from where the manifest was found; the tag is the pin.
            registry.pull_resolved(store, &pinned, resolved, &reporter).await?;
            evidence
        }
        Located::Layout { layout, entry } => {
            let descriptor = layout.import(store, &entry)?;
            store.tag(&pinned.whole(), &descriptor)?;
            layout.evidence(&found.digest)?
        }
    };
    // Kept for the offline re-check at every start; an image fetched without signatures
    // (no policy wants them) keeps what an earlier fetch or load stored.
    if wants_signatures || !evidence.is_empty() {
        store.put_evidence(&found.digest, &evidence)?;
    }
    Ok(evidence)
}

/// The trust check of a brought-in version: the keys that vouched (none without a policy).
pub fn verify(app: &App, store: &Store, digest: &str) -> anyhow::Result<Vec<Verified>> {
    crate::trust::admit_stored(store, &app.image, digest)
}
