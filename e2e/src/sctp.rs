//! Hand-made SCTP packets for a kernel without SCTP sockets: an INIT chunk with a valid CRC32c
//! (conntrack checks it and would mark a bad one invalid), sent and received on raw IP sockets of
//! protocol 132. The initiate tag is the probe's nonce: the receiver logs the tags it sees.

use crc::{Crc, CRC_32_ISCSI};

pub const PROTO: i32 = 132;
const CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// An SCTP packet: common header (verification tag 0, as an INIT requires) + one INIT chunk.
pub fn init_packet(src_port: u16, dst_port: u16, tag: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(32);
    p.extend_from_slice(&src_port.to_be_bytes());
    p.extend_from_slice(&dst_port.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes()); // verification tag
    p.extend_from_slice(&0u32.to_be_bytes()); // checksum, filled below
    p.push(1); // chunk type INIT
    p.push(0); // flags
    p.extend_from_slice(&20u16.to_be_bytes()); // chunk length
    p.extend_from_slice(&tag.to_be_bytes()); // initiate tag
    p.extend_from_slice(&65535u32.to_be_bytes()); // a_rwnd
    p.extend_from_slice(&1u16.to_be_bytes()); // outbound streams
    p.extend_from_slice(&1u16.to_be_bytes()); // inbound streams
    p.extend_from_slice(&tag.to_be_bytes()); // initial TSN
                                             // RFC 9260 appendix A: the CRC32c goes on the wire least significant byte first.
    let crc = CRC32C.checksum(&p);
    p[8..12].copy_from_slice(&crc.to_le_bytes());
    p
}

/// `(dst_port, initiate_tag)` of an SCTP INIT (the SCTP header and after, no IP header), if it is
/// one with a correct checksum.
pub fn parse_init(p: &[u8]) -> Option<(u16, u32)> {
    if p.len() < 32 || p[12] != 1 {
        return None;
    }
    let mut copy = p.to_vec();
    copy[8..12].fill(0);
    if CRC32C.checksum(&copy).to_le_bytes() != p[8..12] {
        return None;
    }
    let dport = u16::from_be_bytes([p[2], p[3]]);
    let tag = u32::from_be_bytes([p[16], p[17], p[18], p[19]]);
    Some((dport, tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_round_trips_and_rejects_bad_checksums() {
        let p = init_packet(40000, 7777, 0xdead_beef);
        assert_eq!(parse_init(&p), Some((7777, 0xdead_beef)));
        let mut bad = p.clone();
        bad[20] ^= 1;
        assert_eq!(parse_init(&bad), None);
    }

    #[test]
    fn checksum_matches_a_known_vector() {
        // CRC32c("123456789") = 0xE3069283, the standard check value for CRC-32/ISCSI.
        assert_eq!(CRC32C.checksum(b"123456789"), 0xE306_9283);
    }
}
