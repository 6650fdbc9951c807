//! Self-describing test values: each value says who wrote it and carries its own
//! check, so a reader can tell a whole value from a torn or mixed one.

/// A value of `len` bytes (at least 24) written by `writer` as its `seq`-th write.
pub fn stamped(writer: u64, seq: u64, len: usize) -> Vec<u8> {
    let len = len.max(24);
    let mut value = Vec::with_capacity(len);
    value.extend_from_slice(&writer.to_le_bytes());
    value.extend_from_slice(&seq.to_le_bytes());
    let fill = (writer.wrapping_mul(31) ^ seq) as u8;
    value.resize(len - 8, fill);
    let sum = checksum(&value);
    value.extend_from_slice(&sum.to_le_bytes());
    value
}

/// If `value` is a whole stamped value, its `(writer, seq)`.
pub fn check_stamped(value: &[u8]) -> Option<(u64, u64)> {
    if value.len() < 24 {
        return None;
    }
    let (body, sum) = value.split_at(value.len() - 8);
    if checksum(body).to_le_bytes() != sum {
        return None;
    }
    let writer = u64::from_le_bytes(body[0..8].try_into().ok()?);
    let seq = u64::from_le_bytes(body[8..16].try_into().ok()?);
    (stamped(writer, seq, value.len()) == value).then_some((writer, seq))
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_values_check_and_torn_ones_do_not() {
        let v = stamped(3, 7, 4096);
        assert_eq!(check_stamped(&v), Some((3, 7)));
        let mut mixed = v.clone();
        mixed[2000..].copy_from_slice(&stamped(4, 7, 4096)[2000..]);
        assert_eq!(check_stamped(&mixed), None);
        assert_eq!(check_stamped(&v[..100]), None);
    }
}
