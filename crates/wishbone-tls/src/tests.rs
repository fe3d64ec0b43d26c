use super::{TlsArguments, acceptor, client_config};

/// The error `acceptor` gives, which must give one.
fn refused(arguments: &TlsArguments) -> String {
    match acceptor(arguments) {
        Ok(_) => panic!("accepted {arguments:?}"),
        Err(error) => error.to_string(),
    }
}

/// A self-signed certificate and its key for localhost, written to `dir`.
fn pair(dir: &std::path::Path) -> TlsArguments {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    TlsArguments {
        cert: Some(cert.clone()),
        key: Some(key),
        ca: Some(cert),
        ..TlsArguments::default()
    }
}

#[test]
fn an_input_and_an_output_each_take_what_is_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let arguments = pair(dir.path());
    assert!(acceptor(&arguments).is_ok());
    assert!(client_config(&arguments).is_ok());
    let verifying = TlsArguments {
        verify_peer: true,
        ..arguments.clone()
    };
    assert!(acceptor(&verifying).is_ok());
    let error = client_config(&verifying).unwrap_err().to_string();
    assert!(error.contains("`tls.verify_peer` is for inputs"), "{error}");
    let naming = TlsArguments {
        server_name: Some("backend".into()),
        ..arguments
    };
    assert!(client_config(&naming).is_ok());
    let error = refused(&naming);
    assert!(
        error.contains("`tls.server_name` names what an output verifies"),
        "{error}"
    );
}

#[test]
fn a_cert_without_its_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let arguments = TlsArguments {
        key: None,
        ..pair(dir.path())
    };
    let error = refused(&arguments);
    assert!(error.contains("go together"), "{error}");
}
