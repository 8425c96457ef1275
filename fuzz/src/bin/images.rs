//! `cargo afl fuzz -i corpus/images -o out/images target/release/images`
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = eie_fuzz::images(data);
    });
}
