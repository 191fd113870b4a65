#!/usr/bin/env python3
"""Known-answer vectors of the sealed format v1 (blob/doc.go), made
independently of the Go code with pyca/cryptography 48.0.0:

    python3 blob/testdata/vectors.py > blob/testdata/vectors.json

key      = bytes 0x00..0x1f (and, at the end, a content hash and a derived key)
plaintext of size n: byte j is j % 251
payload key = HKDF-SHA256(ikm=key, salt=empty, info="exopeer blob v1 payload", 32)
segment i (65,520 plaintext bytes, the last one shorter or empty) is sealed
with AES-256-GCM, nonce = i as 11 bytes big-endian || 0x01 if final else 0x00,
no associated data; the ciphertext is the sealed segments back to back.
"""
import hashlib, json
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes

SEG = 65520
key = bytes(range(32))

def subkey(info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)

def seal(pk, pt):
    g = AESGCM(pk)
    out = b""
    i = 0
    while True:
        seg = pt[i*SEG:(i+1)*SEG]
        last = (i+1)*SEG >= len(pt)
        nonce = i.to_bytes(11, "big") + (b"\x01" if last else b"\x00")
        out += g.encrypt(nonce, seg, None)
        if last:
            return out
        i += 1

pk = subkey(b"exopeer blob v1 payload")
dk = subkey(b"exopeer blob v1 dir")
vecs = []
for n in [0, 1, 65519, 65520, 65521, 3*65520+7]:
    pt = bytes(j % 251 for j in range(n))
    ct = seal(pk, pt)
    v = {"size": n, "ciphertextSize": len(ct), "ciphertextSHA256": hashlib.sha256(ct).hexdigest(),
         "head": ct[:32].hex(), "tail": ct[-32:].hex()}
    if n <= 1:
        v["ciphertext"] = ct.hex()
    vecs.append(v)
dirct = seal(dk, b"exopeer")

# Derived keys: content hash of the plaintext of size 3 MiB - 5 (byte j is
# j % 251), then K = HMAC-SHA256(secret, "exopeer blob key v1" || H).
import hmac
n = 3*(1 << 20) - 5
pt = bytes(j % 251 for j in range(n))
h = hashlib.sha256(b"exopeer blob content v1" + n.to_bytes(8, "big") +
                   b"".join(hashlib.sha256(pt[i:i+(1 << 20)]).digest() for i in range(0, n, 1 << 20))).digest()
secret = b"exopeer test cell secret"
derived = {"size": n, "secret": secret.decode(), "contentHash": h.hex(),
           "key": hmac.new(secret, b"exopeer blob key v1" + h, hashlib.sha256).hexdigest()}
print(json.dumps({"key": key.hex(), "payloadKey": pk.hex(), "dirKey": dk.hex(),
                  "dirSealOfExopeer": dirct.hex(), "vectors": vecs,
                  "derived": derived}, indent=1))
