//! The bundle's bytes, rules, round trip and damage.

use super::wire::*;
use super::writer::SPOOL_IN_MEMORY;
use super::*;
use crate::matrix::CodeMatrix;

fn sample() -> Bundle {
    let m = CodeMatrix::new(5, 3, vec![1, 0, 2, 0, 0, 0, 3, 1, 0, 0, 0, 0, 0, 2, 1]).unwrap();
    let book = Codebook::new(4, &[-0.5, 0.25, 0.75]).unwrap();
    let layer = PackedLayer::encode("fc1.weight", &m, book, 2, 4).unwrap();
    let meta = BundleMeta {
        tool_version: "test".into(),
        source: SourceInfo {
            name: "m.safetensors".into(),
            sha256: Some([7; 32]),
        },
        pointer_bits: 16,
        settings: BTreeMap::from([("pes".to_string(), "2".to_string())]),
    };
    Bundle::new(meta, vec![layer]).unwrap()
}

/// Re-seals a payload with a correct header, so tests reach the structural checks.
fn seal(wire: &WireBundle) -> Vec<u8> {
    let payload = bincode::encode_to_vec(wire, config()).unwrap();
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&payload));
    out.extend_from_slice(&payload);
    out
}

/// The borrowed encoding, the streaming writer and the owned wire types (the payload's
/// documented shape) give the same bytes.
#[test]
fn every_writer_gives_the_documented_bytes() {
    let b = sample();
    let bytes = b.to_bytes().unwrap();
    assert_eq!(bytes, seal(&WireBundle::from(&b)));
    let dir = std::env::temp_dir().join(format!("eie-bundle-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // In memory, and through the spool file.
    for limit in [SPOOL_IN_MEMORY, 0] {
        let mut w = BundleWriter::create(&dir.join("spool"), 16).unwrap();
        w.memory_limit = limit;
        for l in b.layers() {
            w.push(l).unwrap();
        }
        assert_eq!(dir.join("spool").exists(), limit == 0, "limit {limit}");
        let n = w.finish(b.meta(), &dir.join("model.eie")).unwrap();
        let written = std::fs::read(dir.join("model.eie")).unwrap();
        assert!(!dir.join("spool").exists(), "the spool is removed");
        assert_eq!(n as usize, written.len());
        assert_eq!(written, bytes);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_writer_checks_the_bundle_rules() {
    let b = sample();
    let dir = std::env::temp_dir().join(format!("eie-bundle-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut w = BundleWriter::create(&dir.join("spool"), 16).unwrap();
    w.push(&b.layers()[0]).unwrap();
    let err = w.push(&b.layers()[0]).unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");
    let mut meta = b.meta().clone();
    meta.pointer_bits = 32;
    let w = BundleWriter::create(&dir.join("spool2"), 16).unwrap();
    assert!(w.finish(&meta, &dir.join("x.eie")).is_err());
    // An unfinished column batch is caught at the end.
    let wide = b.layers()[0].clone().split_columns(2).unwrap();
    let mut w = BundleWriter::create(&dir.join("spool3"), 16).unwrap();
    w.push(&wide[0]).unwrap();
    let err = w.finish(b.meta(), &dir.join("y.eie")).unwrap_err();
    assert!(
        err.to_string().contains("cover 2 of its 3 columns"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn round_trip_is_exact_and_deterministic() {
    let b = sample();
    let bytes = b.to_bytes().unwrap();
    assert_eq!(&bytes[..8], b"EIEBNDL\0");
    assert_eq!(Bundle::from_bytes(&bytes).unwrap(), b);
    assert_eq!(b.to_bytes().unwrap(), bytes);
}

#[test]
fn header_damage_is_named() {
    let bytes = sample().to_bytes().unwrap();
    let err = |b: &[u8]| Bundle::from_bytes(b).unwrap_err();

    assert!(matches!(
        err(b"PK\x03\x04 not a bundle"),
        Error::BadMagic { .. }
    ));
    assert!(matches!(err(b""), Error::Truncated { .. }));
    assert!(matches!(err(&bytes[..30]), Error::Truncated { .. }));
    assert!(matches!(
        err(&bytes[..bytes.len() - 1]),
        Error::Truncated { .. }
    ));
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(err(&long), Error::TrailingBytes { extra: 1 }));
    let mut v2 = bytes.clone();
    v2[8] = 3;
    assert!(matches!(
        err(&v2),
        Error::UnsupportedVersion {
            found: 3,
            supported: 2
        }
    ));
    let mut flags = bytes.clone();
    flags[12] = 1;
    assert!(matches!(err(&flags), Error::InvalidBundle { .. }));
    let mut huge = bytes.clone();
    huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(err(&huge), Error::Truncated { .. }));
    // Every single-bit flip in the payload is caught by the checksum.
    for at in HEADER_LEN..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x10;
        assert!(
            matches!(err(&flipped), Error::ChecksumMismatch { .. }),
            "byte {at}"
        );
    }
}

#[test]
fn structural_damage_behind_a_valid_checksum_is_caught() {
    let good = WireBundle::from(&sample());
    type Breaker = fn(&mut WireBundle);
    let breakers: [(&str, Breaker); 12] = [
        ("pointer end", |w| w.layers[0].pes[0].ptr[3] += 1),
        ("monotonic pointers", |w| w.layers[0].pes[0].ptr[1] = 9),
        ("code outside codebook", |w| w.layers[0].pes[0].codes[0] = 7),
        ("row count", |w| w.layers[0].rows = 2),
        ("column count", |w| w.layers[0].cols = 4),
        ("codebook fixed point", |w| {
            w.layers[0].codebook_fixed[1] = 1
        }),
        ("pointer width", |w| w.pointer_bits = 12),
        ("duplicate layer", |w| w.layers.push(w.layers[0].clone())),
        ("bias named like a layer", |w| {
            w.layers[0].bias = Some(w.layers[0].name.clone())
        }),
        ("empty bias name", |w| {
            w.layers[0].bias = Some(String::new())
        }),
        ("unsorted settings", |w| {
            w.settings = vec![("z".into(), "1".into()), ("a".into(), "2".into())]
        }),
        ("zero shared value", |w| {
            w.layers[0].codebook_values[2] = 0.0
        }),
    ];
    for (what, break_it) in breakers {
        let mut wire = WireBundle::from(&sample());
        break_it(&mut wire);
        assert!(
            Bundle::from_bytes(&seal(&wire)).is_err(),
            "{what} passed validation"
        );
    }
    assert!(Bundle::from_bytes(&seal(&good)).is_ok());
    // A payload that is not bincode at all, behind a valid checksum.
    let mut junk = MAGIC.to_vec();
    junk.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    junk.extend_from_slice(&0u32.to_le_bytes());
    let payload = [0xffu8; 12];
    junk.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    junk.extend_from_slice(&Sha256::digest(payload));
    junk.extend_from_slice(&payload);
    assert!(matches!(
        Bundle::from_bytes(&junk),
        Err(Error::Decode { .. })
    ));
}
