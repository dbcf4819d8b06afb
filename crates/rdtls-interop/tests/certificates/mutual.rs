use super::*;

#[test]
fn openssl_our_client_ecdsa() {
    mutual_our_client_against_s_server(Alg::EcdsaP256);
}
#[test]
fn openssl_our_client_rsa() {
    mutual_our_client_against_s_server(Alg::Rsa2048);
}
#[test]
fn openssl_our_server_ecdsa() {
    mutual_s_client_against_our_server(Alg::EcdsaP256);
}
#[test]
fn openssl_our_server_rsa() {
    mutual_s_client_against_our_server(Alg::Rsa2048);
}
#[test]
fn gnutls_our_client_ecdsa() {
    mutual_our_client_against_gnutls_serv(Alg::EcdsaP256);
}
#[test]
fn gnutls_our_client_rsa() {
    mutual_our_client_against_gnutls_serv(Alg::Rsa2048);
}
#[test]
fn gnutls_our_server_ecdsa() {
    mutual_gnutls_cli_against_our_server(Alg::EcdsaP256);
}
#[test]
fn gnutls_our_server_rsa() {
    mutual_gnutls_cli_against_our_server(Alg::Rsa2048);
}
