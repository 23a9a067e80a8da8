// `sqlx::migrate!` embeds the migration files it sees at compile time and tracks changes to
// them, but not new files: rebuild when the migrations folder changes.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
