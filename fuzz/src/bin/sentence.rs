//! `cargo afl fuzz -i corpus/sentence -o out/sentence target/release/sentence`
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = eie_fuzz::sentence(data);
    });
}
