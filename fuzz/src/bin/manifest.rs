//! `cargo afl fuzz -i corpus/manifest -o out/manifest target/release/manifest`
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = eie_fuzz::manifest(data);
    });
}
