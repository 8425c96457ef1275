//! `cargo afl fuzz -i corpus/idx -o out/idx target/release/idx`
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = eie_fuzz::idx(data);
    });
}
