package datadir

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

const keyPEMType = "PRIVATE KEY"

// EncodeKey encodes an Ed25519 node key as a PKCS#8 PEM block, the format of
// the data dir's node.key (readable by `openssl pkey`).
func EncodeKey(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode node key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: keyPEMType, Bytes: der}), nil
}

// DecodeKey parses node.key: exactly one PKCS#8 PEM block holding an Ed25519
// private key, and nothing else but white space.
func DecodeKey(data []byte) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != keyPEMType {
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, keyPEMType)
	}
	if len(block.Headers) > 0 {
		return nil, errors.New("PEM block has headers (an encrypted key is not supported)")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("trailing data after the PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS#8: %w", err)
	}
	edk, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want an Ed25519 key", k)
	}
	return edk, nil
}
