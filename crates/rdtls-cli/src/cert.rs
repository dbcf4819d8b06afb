//! `dtls cert`: a CA, a server certificate for localhost, 127.0.0.1 and ::1, and a client
//! certificate, with their keys, ready for the server and client options.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  dtls cert --out certs
  dtls server --listen 127.0.0.1:4433 --cert certs/server.pem --key certs/server.key --ca certs/ca.pem
  dtls client --connect 127.0.0.1:4433 --ca certs/ca.pem --server-name localhost --count 2")]
pub(crate) struct Args {
    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Use RSA-2048 keys instead of ECDSA P-256.
    #[arg(long)]
    rsa: bool,
    /// Days the certificates are valid.
    #[arg(long, default_value_t = 365)]
    days: u32,
}

fn key(rsa: bool) -> anyhow::Result<KeyPair> {
    Ok(if rsa {
        KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?
    } else {
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?
    })
}

/// Valid from an hour ago (clock skew) for `days` days.
fn validity(params: &mut CertificateParams, days: u32) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(i64::from(days));
}

fn write(dir: &Path, name: &str, contents: &str, secret: bool) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    let _ = secret;
    Ok(path)
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.days > 0, "--days must be at least 1");
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;

    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name.push(DnType::CommonName, "dtls example CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut ca, args.days);
    let ca = CertifiedIssuer::self_signed(ca, key(args.rsa)?)?;

    let mut server = CertificateParams::new(Vec::<String>::new())?;
    server.distinguished_name.push(DnType::CommonName, "localhost");
    server.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into()?),
        SanType::IpAddress([127, 0, 0, 1].into()),
        SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut server, args.days);
    let server_key = key(args.rsa)?;
    let server_cert = server.signed_by(&server_key, &ca)?;

    let mut client = CertificateParams::new(Vec::<String>::new())?;
    client.distinguished_name.push(DnType::CommonName, "dtls example client");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    validity(&mut client, args.days);
    let client_key = key(args.rsa)?;
    let client_cert = client.signed_by(&client_key, &ca)?;

    let files = [
        write(&args.out, "ca.pem", &ca.pem(), false)?,
        write(&args.out, "server.pem", &server_cert.pem(), false)?,
        write(&args.out, "server.key", &server_key.serialize_pem(), true)?,
        write(&args.out, "client.pem", &client_cert.pem(), false)?,
        write(&args.out, "client.key", &client_key.serialize_pem(), true)?,
    ];
    for f in &files {
        println!("wrote {}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}
