//! Finding every occurrence of one byte in a read, for cutting it into
//! lines in one pass.
//!
//! `memchr_iter` restarts its search for every line, which for lines of a
//! hundred bytes costs more than the search; comparing 32 bytes at a time
//! and walking the bits of the match mask finds all of a read's delimiters
//! in one pass (SSE2, which every x86-64 processor has).

/// Appends the position, plus `offset`, of every `byte` in `haystack`.
pub fn positions(haystack: &[u8], byte: u8, offset: usize, found: &mut Vec<usize>) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of the x86-64 baseline; every such processor has it.
    unsafe {
        sse2::positions(haystack, byte, offset, found)
    };
    #[cfg(not(target_arch = "x86_64"))]
    found.extend(memchr::memchr_iter(byte, haystack).map(|at| at + offset));
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };

    #[target_feature(enable = "sse2")]
    pub fn positions(haystack: &[u8], byte: u8, offset: usize, found: &mut Vec<usize>) {
        let needle = _mm_set1_epi8(byte as i8);
        let mut chunks = haystack.chunks_exact(32);
        let mut base = offset;
        for chunk in &mut chunks {
            let (low, high) = chunk.split_at(16);
            let mut mask = matches(low, needle) | (matches(high, needle) << 16);
            while mask != 0 {
                found.push(base + mask.trailing_zeros() as usize);
                mask &= mask - 1;
            }
            base += 32;
        }
        let rest = chunks.remainder();
        found.extend(memchr::memchr_iter(byte, rest).map(|at| base + at));
    }

    /// One bit per byte of `bytes` (16 of them) equal to the needle's.
    #[target_feature(enable = "sse2")]
    fn matches(bytes: &[u8], needle: __m128i) -> u32 {
        assert_eq!(bytes.len(), 16);
        // SAFETY: `bytes` holds 16 readable bytes; an unaligned load needs no more.
        let block = unsafe { _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>()) };
        _mm_movemask_epi8(_mm_cmpeq_epi8(block, needle)) as u16 as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_memchr_finds_at_every_length_and_alignment() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let text: Vec<u8> = (0..1000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if state.is_multiple_of(7) {
                    b'\n'
                } else {
                    b'a' + (state % 26) as u8
                }
            })
            .collect();
        for start in 0..40 {
            for end in [
                start,
                start + 1,
                start + 31,
                start + 32,
                start + 33,
                999,
                1000,
            ] {
                let haystack = &text[start..end.max(start)];
                let mut found = Vec::new();
                positions(haystack, b'\n', 5, &mut found);
                let expected: Vec<usize> = memchr::memchr_iter(b'\n', haystack)
                    .map(|at| at + 5)
                    .collect();
                assert_eq!(found, expected, "{start}..{end}");
            }
        }
    }

    #[test]
    fn a_byte_with_the_high_bit_set_is_found_too() {
        let mut found = Vec::new();
        positions(&[0xff; 40], 0xff, 0, &mut found);
        assert_eq!(found, (0..40).collect::<Vec<_>>());
    }
}
