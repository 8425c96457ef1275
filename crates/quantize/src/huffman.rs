//! Huffman code lengths: Deep Compression's third stage, used here to report how small the
//! codes and relative indices would be in storage (EIE's runtime format needs fixed-width
//! entries, so this is a storage figure only).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Optimal prefix-code length of each symbol for these frequencies (0 for symbols that never
/// occur; a lone symbol gets length 1). Deterministic: equal weights merge in symbol order.
pub fn code_lengths(freqs: &[u64]) -> Vec<u32> {
    let used: Vec<usize> = (0..freqs.len()).filter(|&s| freqs[s] > 0).collect();
    let mut lengths = vec![0u32; freqs.len()];
    match used.len() {
        0 => return lengths,
        1 => {
            lengths[used[0]] = 1;
            return lengths;
        }
        _ => {}
    }
    // Nodes: leaves are the used symbols, then internal nodes; parent links give depths.
    let mut parent: Vec<usize> = vec![usize::MAX; used.len()];
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = used
        .iter()
        .enumerate()
        .map(|(node, &s)| Reverse((freqs[s], node)))
        .collect();
    while heap.len() > 1 {
        let Reverse((wa, a)) = heap.pop().expect("two nodes");
        let Reverse((wb, b)) = heap.pop().expect("two nodes");
        let node = parent.len();
        parent.push(usize::MAX);
        parent[a] = node;
        parent[b] = node;
        heap.push(Reverse((wa + wb, node)));
    }
    for (leaf, &s) in used.iter().enumerate() {
        let (mut depth, mut at) = (0u32, leaf);
        while parent[at] != usize::MAX {
            at = parent[at];
            depth += 1;
        }
        lengths[s] = depth;
    }
    lengths
}

/// Bits of the Huffman-coded sequence with these symbol frequencies.
pub fn coded_bits(freqs: &[u64]) -> u64 {
    code_lengths(freqs)
        .iter()
        .zip(freqs)
        .map(|(&l, &f)| l as u64 * f)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_example() {
        // a:45 b:13 c:12 d:16 e:9 f:5 (CLRS): lengths 1 3 3 3 4 4, 224 bits.
        let f = [45, 13, 12, 16, 9, 5];
        assert_eq!(code_lengths(&f), [1, 3, 3, 3, 4, 4]);
        assert_eq!(coded_bits(&f), 224);
    }

    #[test]
    fn degenerate_alphabets() {
        assert_eq!(code_lengths(&[0, 0]), [0, 0]);
        assert_eq!(code_lengths(&[0, 7, 0]), [0, 1, 0]);
        assert_eq!(coded_bits(&[0, 7, 0]), 7);
        assert_eq!(code_lengths(&[1, 1, 1, 1]), [2, 2, 2, 2]);
    }

    #[test]
    fn kraft_equality_holds_and_never_worse_than_fixed_width() {
        let f: Vec<u64> = (1..=16).map(|i| i * i).collect();
        let l = code_lengths(&f);
        let kraft: f64 = l.iter().map(|&x| 0.5f64.powi(x as i32)).sum();
        assert!((kraft - 1.0).abs() < 1e-12);
        assert!(coded_bits(&f) <= 4 * f.iter().sum::<u64>());
    }
}
