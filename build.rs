//! Rebuild when a migration is added or changed: `sqlx::migrate!` embeds `migrations/`, and
//! Cargo does not otherwise know the directory is an input.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
