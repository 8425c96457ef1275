//! `cargo afl fuzz -i corpus/bundle -o out/bundle target/release/bundle`
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = eie_fuzz::bundle(data);
    });
}
