//! `wasmbox policy REF`: which scope of the trust policy applies to REF, and what it requires.

use clap::Args;
use wasmbox_image::parse_reference;
use wasmbox_trust::Policy;

/// Show the trust policy scope and requirements that apply to an image reference
#[derive(Args, Debug)]
pub struct PolicyArgs {
    #[arg(value_name = "REF")]
    pub reference: String,
}

pub fn exec(a: PolicyArgs) -> anyhow::Result<i32> {
    let reference = parse_reference(&a.reference)?;
    let path = crate::trust::policy_path()?;
    let Some(policy) = crate::trust::load_policy()? else {
        println!("policy:  none ({} does not exist): every image is accepted", path.display());
        return Ok(0);
    };
    let (repository, tag) = wasmbox_image::admit::identity(&reference);
    let (scope, reqs) = policy.scope_for(&repository, tag.as_deref());
    println!("policy:  {}", path.display());
    println!("image:   {repository}{}", tag.map(|t| format!(":{t}")).unwrap_or_default());
    println!("scope:   {scope}");
    for line in Policy::describe(reqs) {
        println!("require: {line}");
    }
    Ok(0)
}
