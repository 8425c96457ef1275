//! `cargo afl fuzz -i corpus/tokenizer -o out/tokenizer target/release/tokenizer`
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = eie_fuzz::tokenizer(data);
    });
}
