//! `cargo afl fuzz -i corpus/safetensors -o out/safetensors target/release/safetensors`
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = eie_fuzz::safetensors(data);
    });
}
