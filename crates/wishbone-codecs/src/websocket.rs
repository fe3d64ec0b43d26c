//! What a websocket client's frames cost on the wire (RFC 6455 5.2): the
//! frames themselves are written by `tokio-tungstenite`; an output needs
//! their lengths to know where each one ends in the stream.

/// Bytes of a masked client frame with a payload of `payload` bytes: two
/// bytes of header, an extended length of 2 or 8 bytes past 125 and 65,535
/// bytes, the 4-byte mask, the payload.
pub fn frame_length(payload: usize) -> usize {
    let extended = match payload {
        0..=125 => 0,
        126..=65535 => 2,
        _ => 8,
    };
    2 + extended + 4 + payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frame_lengths_follow_the_protocol() {
        assert_eq!(frame_length(0), 6);
        assert_eq!(frame_length(125), 131);
        assert_eq!(frame_length(126), 134);
        assert_eq!(frame_length(65535), 65543);
        assert_eq!(frame_length(65536), 65550);
    }
}
