package custody

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrBadKey means a signing key file is not a PEM PKCS#8 ed25519 private key.
var ErrBadKey = errors.New("custody: not an ed25519 private key")

// SigName is the detached signature of SHA256SUMS: the hex ed25519
// signature of the SHA256SUMS file's bytes, one line.
const SigName = "SHA256SUMS.sig"

// LoadOrCreateKey reads the ed25519 private key at path (PEM, PKCS#8), or,
// when path does not exist, generates one and writes it there 0600 (never
// overwriting). It returns the hex public key, which the case records.
// The private key belongs to the examiner and must live outside the case.
func LoadOrCreateKey(path string) (string, error) {
	priv, err := LoadKey(path)
	if err == nil {
		return hex.EncodeToString(priv.Public().(ed25519.PublicKey)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("custody: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("custody: generate key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return "", fmt.Errorf("custody: write key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return "", fmt.Errorf("custody: write key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("custody: write key %s: %w", path, err)
	}
	return hex.EncodeToString(pub), nil
}

// LoadKey reads a PEM PKCS#8 ed25519 private key.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("custody: signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%w: %s: no PEM block", ErrBadKey, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadKey, path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s: %T", ErrBadKey, path, k)
	}
	return priv, nil
}

// signBytes signs msg with the key at keyPath after checking that the key
// is the case's recorded signing key.
func (c *Case) signBytes(keyPath string, msg []byte) (string, error) {
	if c.meta.SignPubKey == "" {
		return "", fmt.Errorf("%w (create the case with --sign-key)", ErrNoSigningKey)
	}
	priv, err := LoadKey(keyPath)
	if err != nil {
		return "", err
	}
	if hex.EncodeToString(priv.Public().(ed25519.PublicKey)) != c.meta.SignPubKey {
		return "", fmt.Errorf("%w: %s is not the key recorded at case creation", ErrBadKey, keyPath)
	}
	return hex.EncodeToString(ed25519.Sign(priv, msg)), nil
}

// verifySig checks a hex signature of msg against the case's public key.
func (c *Case) verifySig(msg []byte, sigHex string) bool {
	pub, err := hex.DecodeString(c.meta.SignPubKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return false
	}
	sig, err := hex.DecodeString(strings.TrimSpace(sigHex))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(ed25519.PublicKey(pub), msg, sig)
}

// LoadPublicKey reads an ed25519 public key: PEM SubjectPublicKeyInfo as
// `openssl pkey -in KEY -pubout` writes it, or the hex form of signing.pub.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("custody: public key: %w", err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("custody: public key %s: PEM block %q, want \"PUBLIC KEY\"", path, blk.Type)
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("custody: public key %s: %v", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("custody: public key %s: %T, not ed25519", path, k)
		}
		return pub, nil
	}
	h, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(h) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("custody: public key %s: neither PEM nor %d hex digits", path, 2*ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(h), nil
}

// PublicKeyPEM is pub as PEM SubjectPublicKeyInfo (openssl's -pubout form).
func PublicKeyPEM(pub ed25519.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
