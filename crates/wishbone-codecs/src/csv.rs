//! One CSV record a line, its fields named by columns: RFC 4180 quoting
//! (`"a, b"`, `""` for a quote), read by `csv-core`.

use crate::object::{Object, Text};

/// The columns of the records read, in order.
#[derive(Clone, Debug)]
pub struct Columns {
    names: Vec<String>,
    delimiter: u8,
}

impl Columns {
    /// Records of these columns, fields separated by `delimiter`.
    pub fn new(names: Vec<String>, delimiter: u8) -> Self {
        Self { names, delimiter }
    }

    /// The record of one line as an object of string values, one a column;
    /// a record of another number of fields is an error.
    pub fn decode(&self, line: &str) -> Result<Object<'static>, String> {
        let fields = fields(line.trim_end_matches(['\r', '\n']), self.delimiter)?;
        if fields.len() != self.names.len() {
            return Err(format!(
                "csv: a record of {} fields for {} columns",
                fields.len(),
                self.names.len()
            ));
        }
        let mut object = Object::new();
        for (name, field) in self.names.iter().zip(fields) {
            object.set(name.clone(), Text::string(&field));
        }
        Ok(object)
    }
}

/// The fields of one record: the line read to its end, then to the end
/// of input (an empty read), which ends the last field.
fn fields(line: &str, delimiter: u8) -> Result<Vec<String>, String> {
    let mut reader = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
    let mut input = line.as_bytes();
    let mut output = vec![0; line.len() + 1];
    let mut field = Vec::new();
    let mut fields = Vec::new();
    loop {
        let (result, read, written) = reader.read_field(input, &mut output);
        input = &input[read..];
        field.extend_from_slice(&output[..written]);
        match result {
            csv_core::ReadFieldResult::InputEmpty | csv_core::ReadFieldResult::OutputFull => {}
            csv_core::ReadFieldResult::Field { record_end } => {
                let text = String::from_utf8(std::mem::take(&mut field))
                    .map_err(|_| "csv: a field is not UTF-8".to_string())?;
                fields.push(text);
                if record_end {
                    return Ok(fields);
                }
            }
            csv_core::ReadFieldResult::End => return Ok(fields),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(names: &[&str]) -> Columns {
        Columns::new(names.iter().map(|name| name.to_string()).collect(), b',')
    }

    #[test]
    fn fields_are_named_by_their_columns() {
        let record = columns(&["host", "message", "code"])
            .decode(r#"web-1,"a, quoted ""word""",200"#)
            .unwrap();
        assert_eq!(
            record.to_bytes(),
            br#"{"host":"web-1","message":"a, quoted \"word\"","code":"200"}"#
        );
        let empty = columns(&["a", "b"]).decode("x,").unwrap();
        assert_eq!(empty.to_bytes(), br#"{"a":"x","b":""}"#);
    }

    #[test]
    fn another_number_of_fields_is_an_error() {
        let error = columns(&["a", "b"]).decode("1,2,3").unwrap_err();
        assert!(error.contains("3 fields for 2 columns"), "{error}");
        assert!(columns(&["a", "b"]).decode("1").is_err());
    }
}
