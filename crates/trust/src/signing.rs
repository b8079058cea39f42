//! Envelope signatures.
//!
//! An envelope's signature covers DSSE's pre-authentication encoding of the
//! payload type and the exact payload bytes; the signer's certificate rides
//! along, so a verifier needs only the federation CA certificate. Verified
//! signer certificates are cached by key id, so the X.509 work is done once
//! per signer, not once per envelope.
//!
//! Signatures are checked by the rules of ZIP 215 (ed25519-zebra), under
//! which checking envelopes one by one and in a batch always agree: a
//! receipt accepted in a batch by its sender is accepted by any later
//! check of it alone, so no signer can make a signature that one check
//! takes and another refuses. Signing keys with a small-order (torsion)
//! component are refused when their certificate is first checked.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use ring::signature::{Ed25519KeyPair, KeyPair as _};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tocsin_core::envelope::pae;
use tocsin_core::{AgencyId, FederationId, Identity};
use tocsin_proto::pb;
use x509_parser::prelude::*;

use crate::Error;
use crate::files::{read_certs, read_private_key};
use crate::revocation::SharedRevocations;

/// SHA-256 of an envelope's signed bytes, `PAE(type, payload)`: what a
/// receipt commits to.
pub fn digest(envelope: &pb::Envelope) -> [u8; 32] {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        &pae(&envelope.payload_type, &envelope.payload),
    );
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn key_id(cert_der: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, cert_der))
}

/// Signs envelopes for one agency.
pub struct Signer {
    agency: AgencyId,
    key: Ed25519KeyPair,
    cert_der: Vec<u8>,
    key_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("agency", &self.agency)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads a signing certificate and key, checking that they belong
    /// together and name an agency of `federation`.
    pub fn load(cert: &Path, key: &Path, federation: &FederationId) -> Result<Self, Error> {
        let certs = read_certs(cert)?;
        let key_der = read_private_key(key)?;
        Self::from_der(certs[0].as_ref(), &key_der, federation).map_err(|e| match e {
            Error::Certificate(m) => Error::Certificate(format!("{}: {m}", cert.display())),
            other => other,
        })
    }

    /// Builds a signer from PEM text.
    pub fn from_pem(
        cert_pem: &str,
        key_pem: &str,
        federation: &FederationId,
    ) -> Result<Self, Error> {
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| Error::unreadable("signing certificate", e))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| Error::unreadable("signing key", e))?;
        Self::from_der(cert.as_ref(), &key, federation)
    }

    fn from_der(
        cert_der: &[u8],
        key: &PrivateKeyDer<'_>,
        federation: &FederationId,
    ) -> Result<Self, Error> {
        let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(key.secret_der())
            .map_err(|_| Error::Certificate("signing key is not an Ed25519 PKCS#8 key".into()))?;
        let (fed, identity) = crate::identity::identity_of(cert_der)?;
        let Identity::Agency(agency) = identity else {
            return Err(Error::Certificate(
                "signing certificate is not an agency's".into(),
            ));
        };
        if &fed != federation {
            return Err(Error::Certificate(format!(
                "signing certificate is for federation {fed}, not {federation}"
            )));
        }
        let (_, cert) = X509Certificate::from_der(cert_der)
            .map_err(|e| Error::unreadable("signing certificate", e))?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key().as_ref() {
            return Err(Error::Certificate(
                "signing key does not match the signing certificate".into(),
            ));
        }
        Ok(Self {
            agency,
            key,
            key_id: key_id(cert_der),
            cert_der: cert_der.to_vec(),
        })
    }

    /// The signing certificate, DER, for showing its expiry.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The agency this signer speaks for.
    pub fn agency(&self) -> &AgencyId {
        &self.agency
    }

    /// Wraps `payload` in an envelope signed by this agency.
    pub fn sign(&self, payload_type: &str, payload: Vec<u8>) -> pb::Envelope {
        let sig = self.key.sign(&pae(payload_type, &payload));
        pb::Envelope {
            payload_type: payload_type.to_owned(),
            payload,
            signature: Some(pb::Signature {
                signer: self.agency.to_string(),
                key_id: self.key_id.clone(),
                sig: sig.as_ref().to_vec(),
                certificate: self.cert_der.clone(),
            }),
        }
    }
}

/// What a verified envelope proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The agency that signed it.
    pub signer: AgencyId,
    /// SHA-256 of `PAE(type, payload)`.
    pub digest: [u8; 32],
}

#[derive(Debug, Clone)]
struct KnownKey {
    agency: AgencyId,
    public_key: ed25519_zebra::VerificationKey,
    serial: Vec<u8>,
}

/// An envelope whose certificate and claims passed, its signature not yet
/// checked.
struct Candidate<'a> {
    key: KnownKey,
    envelope: &'a pb::Envelope,
    signature: ed25519_zebra::Signature,
}

impl Candidate<'_> {
    fn message(&self) -> Vec<u8> {
        pae(&self.envelope.payload_type, &self.envelope.payload)
    }

    fn check_alone(&self) -> Result<(), Error> {
        self.key
            .public_key
            .verify(&self.signature, &self.message())
            .map_err(|_| Error::Envelope("signature does not match the payload".into()))
    }

    fn verified(self) -> Verified {
        Verified {
            signer: self.key.agency,
            digest: digest(self.envelope),
        }
    }
}

/// Checks envelopes against the federation CA.
#[derive(Debug, Clone)]
pub struct Verifier {
    federation: FederationId,
    ca_der: Arc<Vec<u8>>,
    known: Arc<RwLock<HashMap<String, KnownKey>>>,
    revocations: SharedRevocations,
}

impl Verifier {
    /// A verifier trusting the CA certificate at `ca` for `federation`.
    pub fn load(ca: &Path, federation: &FederationId) -> Result<Self, Error> {
        let certs = read_certs(ca)?;
        Self::new(certs[0].as_ref(), federation)
    }

    /// A verifier trusting the DER CA certificate `ca_der`.
    pub fn new(ca_der: &[u8], federation: &FederationId) -> Result<Self, Error> {
        X509Certificate::from_der(ca_der).map_err(|e| Error::unreadable("CA certificate", e))?;
        Ok(Self {
            federation: federation.clone(),
            ca_der: Arc::new(ca_der.to_vec()),
            known: Arc::default(),
            revocations: SharedRevocations::default(),
        })
    }

    /// Also refuses envelopes signed with a certificate that `revocations`
    /// (as in force at each check) revokes.
    pub fn with_revocations(mut self, revocations: SharedRevocations) -> Self {
        self.revocations = revocations;
        self
    }

    /// Checks an envelope of type `expected_type`: its certificate was issued
    /// by the federation CA for signing, names the agency the signature
    /// claims, and the signature covers the type and payload.
    pub fn verify(&self, envelope: &pb::Envelope, expected_type: &str) -> Result<Verified, Error> {
        let candidate = self.candidate(envelope, expected_type)?;
        candidate.check_alone()?;
        Ok(candidate.verified())
    }

    /// Checks several envelopes of type `expected_type` as [`Self::verify`]
    /// would one by one, with one batch check of their signatures (about a
    /// third of the cost per signature when they share a signer). The
    /// answers are in the order of `envelopes`; should the batch fail, each
    /// signature is checked alone to find the bad ones.
    pub fn verify_batch(
        &self,
        envelopes: &[&pb::Envelope],
        expected_type: &str,
    ) -> Vec<Result<Verified, Error>> {
        let candidates: Vec<Result<Candidate<'_>, Error>> = envelopes
            .iter()
            .map(|e| self.candidate(e, expected_type))
            .collect();
        let ready = candidates.iter().filter(|c| c.is_ok()).count();
        let batch_passed = ready > 1 && {
            let mut batch = ed25519_zebra::batch::Verifier::new();
            for c in candidates.iter().flatten() {
                let key = ed25519_zebra::VerificationKeyBytes::from(c.key.public_key);
                batch.queue((key, c.signature, &c.message()));
            }
            batch.verify(rand::rng()).is_ok()
        };
        candidates
            .into_iter()
            .map(|c| {
                let c = c?;
                if !batch_passed {
                    c.check_alone()?;
                }
                Ok(c.verified())
            })
            .collect()
    }

    /// Everything about an envelope but its signature: type, certificate,
    /// revocation, and the signer it claims.
    fn candidate<'a>(
        &self,
        envelope: &'a pb::Envelope,
        expected_type: &str,
    ) -> Result<Candidate<'a>, Error> {
        let bad = |m: &str| Error::Envelope(m.to_owned());
        if envelope.payload_type != expected_type {
            return Err(Error::Envelope(format!(
                "payload type {:?}, expected {expected_type:?}",
                envelope.payload_type
            )));
        }
        let sig = envelope
            .signature
            .as_ref()
            .ok_or_else(|| bad("no signature"))?;
        let key = self.signer_key(sig)?;
        if self.revocations.current().serial_is_revoked(&key.serial) {
            return Err(Error::Envelope(format!(
                "{}'s signing certificate is revoked",
                key.agency
            )));
        }
        if key.agency.as_str() != sig.signer {
            return Err(Error::Envelope(format!(
                "signature claims signer {:?} but its certificate is {}'s",
                sig.signer, key.agency
            )));
        }
        let signature = signature_of(&sig.sig)?;
        Ok(Candidate {
            key,
            envelope,
            signature,
        })
    }

    fn signer_key(&self, sig: &pb::Signature) -> Result<KnownKey, Error> {
        if key_id(&sig.certificate) != sig.key_id {
            return Err(Error::Envelope(
                "key id does not match the certificate".into(),
            ));
        }
        if let Some(k) = self
            .known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&sig.key_id)
        {
            return Ok(k.clone());
        }
        let key = self.check_signing_cert(&sig.certificate)?;
        self.known
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sig.key_id.clone(), key.clone());
        Ok(key)
    }

    fn check_signing_cert(&self, der: &[u8]) -> Result<KnownKey, Error> {
        let bad = |m: String| Error::Envelope(format!("signing certificate: {m}"));
        let (_, ca) = X509Certificate::from_der(&self.ca_der).map_err(|e| bad(e.to_string()))?;
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| bad(e.to_string()))?;
        cert.verify_signature(Some(ca.public_key()))
            .map_err(|_| bad("not issued by the federation CA".into()))?;
        if cert.issuer() != ca.subject() {
            return Err(bad("not issued by the federation CA".into()));
        }
        if !cert.validity().is_valid() {
            return Err(bad("expired or not yet valid".into()));
        }
        let code_signing = cert.extended_key_usage().ok().flatten().is_some_and(|eku| {
            eku.value.code_signing && !eku.value.client_auth && !eku.value.server_auth
        });
        if !code_signing {
            return Err(bad("not a signing certificate (extended key usage)".into()));
        }
        let (fed, identity) =
            crate::identity::identity_of_parsed(&cert).map_err(|e| bad(e.to_string()))?;
        if fed != self.federation {
            return Err(bad(format!(
                "for federation {fed}, not {}",
                self.federation
            )));
        }
        let Identity::Agency(agency) = identity else {
            return Err(bad("not an agency's".into()));
        };
        Ok(KnownKey {
            agency,
            public_key: signing_key(&cert.public_key().subject_public_key.data).map_err(bad)?,
            serial: crate::revocation::normalise(cert.raw_serial()),
        })
    }
}

/// A signature's bytes, refused unless its point R is encoded as RFC 8032
/// requires. ZIP 215 alone would take a non-canonical R, which a verifier
/// decoding by RFC 8032 refuses: a signer could make a receipt that
/// Tocsin accepts and other tools do not.
fn signature_of(bytes: &[u8]) -> Result<ed25519_zebra::Signature, Error> {
    let bad = || Error::Envelope("signature does not match the payload".into());
    let bytes = <[u8; 64]>::try_from(bytes).map_err(|_| bad())?;
    let (r, _) = bytes.split_first_chunk::<32>().ok_or_else(bad)?;
    if !canonical_point(r) {
        return Err(Error::Envelope(
            "signature with a non-canonical point encoding".into(),
        ));
    }
    Ok(ed25519_zebra::Signature::from(bytes))
}

/// Whether `bytes` is the canonical encoding of an Edwards point's y and
/// sign (RFC 8032, 5.1.3): y below p = 2^255 - 19, and no sign bit on a
/// point whose x is zero (y = 1 or y = p - 1). Whether the point exists is
/// left to the signature check.
fn canonical_point(bytes: &[u8; 32]) -> bool {
    let sign = bytes[31] & 0x80 != 0;
    let mut y = *bytes;
    y[31] &= 0x7f;
    let middle_all_ones = y[1..31].iter().all(|&b| b == 0xff);
    // y >= p: the top byte 0x7f, the middle all ones, the lowest >= 0xed.
    if y[31] == 0x7f && middle_all_ones && y[0] >= 0xed {
        return false;
    }
    let one = y[0] == 1 && y[1..].iter().all(|&b| b == 0);
    let minus_one = y[0] == 0xec && middle_all_ones && y[31] == 0x7f;
    !(sign && (one || minus_one))
}

/// An Ed25519 public key fit to check signatures: canonically encoded and a
/// point of the prime-order subgroup, so no signer can craft signatures
/// that hold under one reading of Ed25519 and not another.
fn signing_key(bytes: &[u8]) -> Result<ed25519_zebra::VerificationKey, String> {
    let bytes = <[u8; 32]>::try_from(bytes).map_err(|_| "not an Ed25519 key".to_owned())?;
    if !canonical_point(&bytes) {
        return Err("an Ed25519 key with a non-canonical encoding".into());
    }
    let sound = curve25519_dalek::edwards::CompressedEdwardsY(bytes)
        .decompress()
        .is_some_and(|p| p.is_torsion_free() && !p.is_small_order());
    if !sound {
        return Err("an Ed25519 key outside the prime-order subgroup".into());
    }
    ed25519_zebra::VerificationKey::try_from(bytes).map_err(|e| format!("Ed25519 key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::CertificateAuthority;

    fn setup() -> (FederationId, CertificateAuthority, Signer, Verifier) {
        let fed = FederationId::new("test.tocsin").unwrap();
        let ca = CertificateAuthority::generate(&fed).unwrap();
        let agency = AgencyId::new("TR-MIT").unwrap();
        let issued = ca.issue_signing(&agency).unwrap();
        let signer = Signer::from_pem(&issued.cert_pem, &issued.key_pem, &fed).unwrap();
        let ca_der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap();
        let verifier = Verifier::new(ca_der.as_ref(), &fed).unwrap();
        (fed, ca, signer, verifier)
    }

    /// A CRL of `ca` listing the DER certificate `cert`.
    fn crl_listing(ca: &CertificateAuthority, cert: &[u8]) -> Vec<u8> {
        let revoked = crate::pki::Revoked {
            serial: crate::revocation::serial_of(cert).unwrap(),
            at: ::time::OffsetDateTime::now_utc(),
        };
        let pem = ca.crl(&[revoked], 2).unwrap();
        rustls_pki_types::CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    }

    #[test]
    fn a_revoked_signing_certificate_is_refused_and_only_the_ca_revokes() {
        let (fed, ca, signer, verifier) = setup();
        let env = signer.sign("t", b"x".to_vec());
        assert!(verifier.verify(&env, "t").is_ok());

        let ca_der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap();
        let crl = crl_listing(&ca, &signer.cert_der);
        let revocations =
            crate::revocation::Revocations::from_der(vec![crl.into()], ca_der.as_ref()).unwrap();
        assert_eq!(revocations.len(), 1);
        let shared = crate::revocation::SharedRevocations::default();
        let verifier = verifier.with_revocations(shared.clone());
        assert!(verifier.verify(&env, "t").is_ok(), "nothing revoked yet");
        shared.set(revocations);
        let err = verifier.verify(&env, "t").unwrap_err().to_string();
        assert!(err.contains("revoked"), "{err}");

        // A CRL signed by another CA is refused outright.
        let rogue = CertificateAuthority::generate(&fed).unwrap();
        let forged = crl_listing(&rogue, &signer.cert_der);
        assert!(
            crate::revocation::Revocations::from_der(vec![forged.into()], ca_der.as_ref()).is_err()
        );
    }

    #[test]
    fn a_signed_envelope_verifies() {
        let (_, _, signer, verifier) = setup();
        let env = signer.sign("t", b"payload".to_vec());
        let v = verifier.verify(&env, "t").unwrap();
        assert_eq!(v.signer.as_str(), "TR-MIT");
        assert_eq!(v.digest, digest(&env));
        // Cached path gives the same answer.
        assert_eq!(verifier.verify(&env, "t").unwrap(), v);
    }

    #[test]
    fn a_batch_agrees_with_checking_one_by_one() {
        let (fed, ca, signer, verifier) = setup();
        let other = ca
            .issue_signing(&AgencyId::new("FR-DGSI").unwrap())
            .unwrap();
        let other = Signer::from_pem(&other.cert_pem, &other.key_pem, &fed).unwrap();
        let mut envs: Vec<pb::Envelope> = (0..6u8)
            .map(|i| signer.sign("t", vec![i; 40]))
            .chain((0..3u8).map(|i| other.sign("t", vec![i; 7])))
            .collect();
        let all_good: Vec<_> = envs.iter().collect();
        let batch = verifier.verify_batch(&all_good, "t");
        for (env, got) in envs.iter().zip(&batch) {
            assert_eq!(got.as_ref().unwrap(), &verifier.verify(env, "t").unwrap());
        }
        assert_eq!(batch[7].as_ref().unwrap().signer.as_str(), "FR-DGSI");

        // One altered payload, one altered signature, one of the wrong
        // type: those three fail with the errors a lone check gives, the
        // rest still pass.
        envs[1].payload[0] ^= 1;
        envs[4].signature.as_mut().unwrap().sig[10] ^= 1;
        envs[8].payload_type = "u".into();
        let some_bad: Vec<_> = envs.iter().collect();
        let batch = verifier.verify_batch(&some_bad, "t");
        for (i, (env, got)) in envs.iter().zip(&batch).enumerate() {
            let alone = verifier.verify(env, "t");
            match [1, 4, 8].contains(&i) {
                true => assert_eq!(
                    got.as_ref().unwrap_err().to_string(),
                    alone.unwrap_err().to_string()
                ),
                false => assert_eq!(got.as_ref().unwrap(), &alone.unwrap()),
            }
        }
        assert!(verifier.verify_batch(&[], "t").is_empty());
    }

    #[test]
    fn keys_outside_the_prime_order_subgroup_are_refused() {
        use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
        use curve25519_dalek::edwards::CompressedEdwardsY;
        // A point of order 8.
        let torsion: [u8; 32] =
            hex::decode("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
                .unwrap()
                .try_into()
                .unwrap();
        let torsion = CompressedEdwardsY(torsion).decompress().unwrap();
        assert!(torsion.is_small_order());
        let sound = ED25519_BASEPOINT_POINT * curve25519_dalek::Scalar::from(12345u64);
        assert!(signing_key(sound.compress().as_bytes()).is_ok());
        for bad in [sound + torsion, torsion] {
            let err = signing_key(bad.compress().as_bytes()).unwrap_err();
            assert!(err.contains("prime-order subgroup"), "{err}");
        }
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(signing_key(&identity).is_err());
        assert!(signing_key(&[7u8; 31]).is_err());
    }

    #[test]
    fn only_canonical_point_encodings_pass() {
        let p_minus: [u8; 32] = {
            // p = 2^255 - 19, little-endian.
            let mut p = [0xffu8; 32];
            p[0] = 0xed;
            p[31] = 0x7f;
            p
        };
        let with = |low: u8, sign: bool| {
            let mut b = p_minus;
            b[0] = low;
            if sign {
                b[31] |= 0x80;
            }
            b
        };
        let mut one = [0u8; 32];
        one[0] = 1;
        let mut negative_one_x0 = one;
        negative_one_x0[31] |= 0x80;
        assert!(canonical_point(&one));
        assert!(!canonical_point(&negative_one_x0), "x = 0 with a sign bit");
        assert!(canonical_point(&with(0xec, false)), "y = p - 1");
        assert!(
            !canonical_point(&with(0xec, true)),
            "y = p - 1, x = 0, sign bit"
        );
        assert!(canonical_point(&with(0xeb, true)));
        for low in [0xed, 0xee, 0xff] {
            assert!(
                !canonical_point(&with(low, false)),
                "y = p + {}",
                low - 0xed
            );
            assert!(!canonical_point(&with(low, true)));
        }
        let real = curve25519_dalek::constants::ED25519_BASEPOINT_POINT
            * curve25519_dalek::Scalar::from(987_654_321u64);
        assert!(canonical_point(real.compress().as_bytes()));
    }

    /// A signer who knows its secret scalar can make a signature whose R is
    /// the identity written as y = p + 1: ZIP 215 takes it, RFC 8032's
    /// decoding refuses it, and so does Tocsin.
    #[test]
    fn a_signature_with_a_non_canonical_r_is_refused() {
        use curve25519_dalek::edwards::EdwardsPoint;
        use curve25519_dalek::scalar::{Scalar, clamp_integer};
        let seed = [7u8; 32];
        let h = ring::digest::digest(&ring::digest::SHA512, &seed);
        let a_bytes = clamp_integer(h.as_ref()[..32].try_into().unwrap());
        let public = EdwardsPoint::mul_base_clamped(a_bytes)
            .compress()
            .to_bytes();
        let message = b"a receipt to deny later";
        let mut r = [0xffu8; 32];
        r[0] = 0xee;
        r[31] = 0x7f;
        let mut hashed = Vec::new();
        hashed.extend_from_slice(&r);
        hashed.extend_from_slice(&public);
        hashed.extend_from_slice(message);
        let k = ring::digest::digest(&ring::digest::SHA512, &hashed);
        let k = Scalar::from_bytes_mod_order_wide(k.as_ref().try_into().unwrap());
        let s = k * Scalar::from_bytes_mod_order(a_bytes);
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r);
        sig[32..].copy_from_slice(s.as_bytes());

        let key = signing_key(&public).unwrap();
        assert!(
            key.verify(&ed25519_zebra::Signature::from(sig), message)
                .is_ok(),
            "ZIP 215 alone accepts it"
        );
        let err = signature_of(&sig).unwrap_err();
        assert!(err.to_string().contains("non-canonical"), "{err}");
        assert!(signature_of(&sig[..63]).is_err());
    }

    #[test]
    fn tampering_is_detected() {
        let (_, _, signer, verifier) = setup();
        let env = signer.sign("t", b"payload".to_vec());

        let mut changed = env.clone();
        changed.payload[0] ^= 1;
        assert!(verifier.verify(&changed, "t").is_err());

        let mut retyped = env.clone();
        retyped.payload_type = "u".into();
        assert!(verifier.verify(&retyped, "u").is_err());
        assert!(verifier.verify(&env, "u").is_err());

        let mut renamed = env.clone();
        renamed.signature.as_mut().unwrap().signer = "FR-DGSI".into();
        let err = verifier.verify(&renamed, "t").unwrap_err().to_string();
        assert!(err.contains("claims signer"), "{err}");
    }

    #[test]
    fn another_ca_is_not_trusted() {
        let (fed, _, _, verifier) = setup();
        let other = CertificateAuthority::generate(&fed).unwrap();
        let issued = other
            .issue_signing(&AgencyId::new("TR-MIT").unwrap())
            .unwrap();
        let rogue = Signer::from_pem(&issued.cert_pem, &issued.key_pem, &fed).unwrap();
        let err = verifier
            .verify(&rogue.sign("t", b"x".to_vec()), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not issued by the federation CA"), "{err}");
    }

    #[test]
    fn tls_certificates_cannot_sign() {
        let (fed, ca, _, verifier) = setup();
        let agency = AgencyId::new("TR-MIT").unwrap();
        let node = ca.issue_node(&agency, &[]).unwrap();
        // A node's TLS key is ECDSA; forge an envelope carrying its certificate.
        let signing = ca.issue_signing(&agency).unwrap();
        let signer = Signer::from_pem(&signing.cert_pem, &signing.key_pem, &fed).unwrap();
        let mut env = signer.sign("t", b"x".to_vec());
        let node_der = CertificateDer::from_pem_slice(node.cert_pem.as_bytes()).unwrap();
        let sig = env.signature.as_mut().unwrap();
        sig.certificate = node_der.as_ref().to_vec();
        sig.key_id = key_id(&sig.certificate);
        let err = verifier.verify(&env, "t").unwrap_err().to_string();
        assert!(err.contains("not a signing certificate"), "{err}");
    }
}
