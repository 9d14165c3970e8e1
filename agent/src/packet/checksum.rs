//! The Internet checksum (RFC 1071), and forcing it to a chosen value.

/// Adds `data` as big-endian 16-bit words to `init` (an odd last byte is
/// padded with zero). The result is not folded.
pub fn ones_sum(data: &[u8], init: u32) -> u32 {
    let mut sum = u64::from(init);
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    fold(sum)
}

/// Folds carries into 16 bits (kept in a u32 for further adding).
fn fold(mut sum: u64) -> u32 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    u32::try_from(sum).unwrap_or(0xffff)
}

/// The checksum to write: the complement of the folded sum.
pub fn finish(sum: u32) -> u16 {
    let folded = u16::try_from(fold(u64::from(sum))).unwrap_or(0xffff);
    !folded
}

/// Sum of a TCP/UDP/ICMPv6 pseudo-header without its length field.
pub fn pseudo_header_sum(src: &[u8], dst: &[u8], proto: u8) -> u32 {
    ones_sum(dst, ones_sum(src, u32::from(proto)))
}

/// True when `data` (with `init` for the pseudo-header) checks out.
pub fn is_valid(data: &[u8], init: u32) -> bool {
    ones_sum(data, init) == 0xffff
}

/// Writes `target` into the checksum field at `csum_at` and picks the word
/// at `free_at` so the message still checks out: Paris traceroute's trick
/// for a checksum that stays constant (ICMP) or carries the probe number
/// (UDP).
pub fn force_checksum(m: &mut [u8], init: u32, csum_at: usize, free_at: usize, target: u16) {
    m[csum_at..csum_at + 2].copy_from_slice(&target.to_be_bytes());
    m[free_at..free_at + 2].copy_from_slice(&[0, 0]);
    let sum = u16::try_from(ones_sum(m, init)).unwrap_or(0xffff);
    m[free_at..free_at + 2].copy_from_slice(&(!sum).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(ones_sum(&data, 0), 0xddf2);
        assert_eq!(finish(0xddf2), 0x220d);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(ones_sum(&[0x12, 0x34, 0x56], 0), 0x1234 + 0x5600);
    }

    #[test]
    fn forced_checksum_is_valid_for_every_target() {
        let mut m = [0x08, 0x00, 0, 0, 0x12, 0x34, 0x00, 0x07, 0, 0, 0xaa, 0xbb];
        for target in [0u16, 1, 0x5a00, 0xfffe, 0xffff] {
            force_checksum(&mut m, 0, 2, 8, target);
            assert_eq!(u16::from_be_bytes([m[2], m[3]]), target);
            assert!(is_valid(&m, 0), "target {target:#x}: {m:02x?}");
        }
    }
}
