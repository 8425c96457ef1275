//! `cargo afl fuzz -i corpus/recipe -o out/recipe target/release/recipe`
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = eie_fuzz::recipe(data);
    });
}
