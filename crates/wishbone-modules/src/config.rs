//! Small helpers shared by the modules' `Config` types.

use bytes::Bytes;
use wishbone_runtime::ArgumentError;

/// A delimiter as the bytes it stands for; refuses an empty one, which would
/// make every byte an event boundary.
pub fn delimiter_bytes(delimiter: &str) -> Result<Bytes, ArgumentError> {
    if delimiter.is_empty() {
        return Err(ArgumentError::field("delimiter", "must not be empty"));
    }
    Ok(Bytes::copy_from_slice(delimiter.as_bytes()))
}

/// The default delimiter: one event per line.
pub fn default_delimiter() -> String {
    "\n".to_string()
}

/// File permissions written in octal (`"0666"`, `"0o640"`), for the
/// argument `mode`.
pub fn octal_mode(mode: &str) -> Result<u32, ArgumentError> {
    u32::from_str_radix(mode.trim_start_matches("0o"), 8)
        .ok()
        .filter(|bits| *bits <= 0o7777)
        .ok_or_else(|| {
            ArgumentError::field(
                "mode",
                format!("must be permissions in octal, such as \"0644\", not `{mode}`"),
            )
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn modes_are_octal() {
        assert_eq!(super::octal_mode("0666").unwrap(), 0o666);
        assert_eq!(super::octal_mode("0o640").unwrap(), 0o640);
        assert_eq!(super::octal_mode("660").unwrap(), 0o660);
        assert!(super::octal_mode("0999").is_err());
        assert!(super::octal_mode("17777").is_err());
        assert!(super::octal_mode("rw-rw-rw-").is_err());
    }
}
