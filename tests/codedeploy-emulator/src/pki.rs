//! The keys the real CodeDeploy agent needs to talk to the emulator: a local
//! CA, a server certificate for `127.0.0.1` signed by it (the agent only
//! speaks https to its command service unless put in a test profile), and a
//! signing key for the deployment specifications it receives as PKCS#7
//! SignedData. Made with the `openssl` command-line tool, which every Debian
//! machine that can run the agent has.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The files of one local PKI, all PEM, in one directory.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate: give it to the agent as `SSL_CERT_FILE` and
    /// `AWS_SSL_CA_BUNDLE`.
    pub ca_cert: PathBuf,
    /// The server certificate for `127.0.0.1` and `localhost`.
    pub server_cert: PathBuf,
    /// The server certificate's private key (PKCS#8).
    pub server_key: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run openssl ({e}); install Debian's openssl package (scripts/setup-agent does)"))?;
    if !out.status.success() {
        return Err(format!("openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

impl Pki {
    /// Makes a CA and a server certificate in `dir` (created if missing).
    pub fn create(dir: &Path) -> Result<Pki, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let ext = dir.join("server.ext");
        std::fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
            .map_err(|e| format!("cannot write {}: {e}", ext.display()))?;
        let steps: [&[&str]; 3] = [
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=ferry test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        ];
        for args in steps {
            openssl(args, dir)?;
        }
        Ok(Pki { ca_cert: dir.join("ca.pem"), server_cert: dir.join("server.pem"), server_key: dir.join("server.key") })
    }

    /// `payload` as PKCS#7 SignedData in PEM, signed with the CA's key (the
    /// agent checks the signature but not the signer: it verifies with
    /// `NOVERIFY`, so any key will do; the real service signs with AWS's).
    pub fn sign(&self, payload: &[u8]) -> Result<String, String> {
        let dir = self.ca_cert.parent().ok_or("the CA certificate has no directory")?;
        let input = tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("cannot write a temp file: {e}"))?;
        std::fs::write(input.path(), payload).map_err(|e| format!("cannot write a temp file: {e}"))?;
        let out = Command::new("openssl")
            .args(["smime", "-sign", "-binary", "-nodetach", "-outform", "PEM", "-signer", "ca.pem", "-inkey", "ca.key", "-in"])
            .arg(input.path())
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run openssl: {e}"))?;
        if !out.status.success() {
            return Err(format!("openssl smime -sign failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        String::from_utf8(out.stdout).map_err(|e| format!("openssl printed non-UTF-8 PEM: {e}"))
    }
}
