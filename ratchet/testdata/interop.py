#!/usr/bin/env python3
"""An independent implementation of exopeer's ratchet, written from
ratchet/doc.go alone, checked against the frozen vectors in this directory.

Usage: interop.py [DIR [TRANSCRIPT]]   (DIR holds x3dh.txt, pqxdh.txt,
ratchet-steps.txt; default: this file's directory; TRANSCRIPT is a
conversation ratchet/interop_test.go writes). Prints one line per check, "FAIL ..." on a
mismatch, and exits 1 if any check failed. Needs Python 3 and the
`cryptography` package (X25519, Ed25519, HKDF, HMAC, AES-GCM). ML-KEM-1024 is
not in it: PQXDH uses the vector file's recorded shared secret SS.
"""

import hashlib
import hmac
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey, Ed25519PublicKey)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey, X25519PublicKey)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.exceptions import InvalidTag

# Params Exopeer (doc.go, "Key derivation").
HANDSHAKE = b"exopeer_X3DH_X25519_SHA-256_v1"
PQHANDSHAKE = b"exopeer_PQXDH_X25519_SHA-256_ML-KEM-1024_v1"
ROOT = b"exopeer_Ratchet_v1"
MESSAGE = b"exopeer_MessageKeys_v1"
INITIAL_IDENTITY = b"exopeer_InitialIdentity_v1"

VERSION = 0x01
OVERHEAD = 85
MAX_SKIP = 1000
MAX_SKIPPED = 2000

failures = []


def check(name, got, want):
    if got == want:
        print("ok   " + name)
    else:
        failures.append(name)
        g = got.hex() if isinstance(got, (bytes, bytearray)) else repr(got)
        w = want.hex() if isinstance(want, (bytes, bytearray)) else repr(want)
        print("FAIL %s\n  got  %s\n  want %s" % (name, g, w))


# --- primitives -----------------------------------------------------------

def hkdf(salt, ikm, info, n):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=salt,
                info=info).derive(ikm)


def pub(priv):
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def dh(priv, public):
    out = X25519PrivateKey.from_private_bytes(priv).exchange(
        X25519PublicKey.from_public_bytes(public))
    if out == bytes(32):
        raise ValueError("all-zero DH output")
    return out


def ed_pub(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed_sign(seed, msg):
    return Ed25519PrivateKey.from_private_bytes(seed).sign(msg)


def ed_verify(public, sig, msg):
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(sig, msg)
        return True
    except Exception:
        return False


def handshake_kdf(parts, info):
    okm = hkdf(bytes(32), b"\xff" * 32 + b"".join(parts), info, 96)
    return okm[0:32], okm[32:64], okm[64:96]


def kdf_rk_he(rk, dh_out):
    okm = hkdf(rk, dh_out, ROOT, 96)
    return okm[0:32], okm[32:64], okm[64:96]


def kdf_ck(ck):
    return (hmac.new(ck, b"\x02", hashlib.sha256).digest(),
            hmac.new(ck, b"\x01", hashlib.sha256).digest())  # (next ck, mk)


def encrypt(mk, plaintext, ad):
    keys = hkdf(bytes(32), mk, MESSAGE, 44)
    return AESGCM(keys[0:32]).encrypt(keys[32:44], plaintext, ad)


def decrypt(mk, ciphertext, ad):
    keys = hkdf(bytes(32), mk, MESSAGE, 44)
    return AESGCM(keys[0:32]).decrypt(keys[32:44], ciphertext, ad)


def hencrypt(hk, nonce, header):
    return AESGCM(hk).encrypt(nonce, header, bytes([VERSION]))


def hdecrypt(hk, message):
    if hk is None:
        return None
    try:
        h = AESGCM(hk).decrypt(message[1:13], message[13:69],
                               message[0:1])
    except InvalidTag:
        return None
    return h[0:32], struct.unpack(">I", h[32:36])[0], \
        struct.unpack(">I", h[36:40])[0]


# --- vector files ---------------------------------------------------------

def read_cases(path):
    """x3dh.txt / pqxdh.txt: "case: NAME" then "field: value" lines."""
    cases, cur = {}, None
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        k, _, v = line.partition(": ")
        if k == "case":
            cur = cases.setdefault(v, {})
        else:
            cur[k] = v
    return cases


# --- handshakes -----------------------------------------------------------

def u32(n):
    return struct.pack(">I", n)


def check_bundle(name, c, bundle):
    """Parse the bundle as doc.go lays it out, verify every signature, and
    rebuild it byte for byte by signing with B's seed (Ed25519 is
    deterministic)."""
    b = bytes.fromhex(bundle)
    seed = bytes.fromhex(c["B.ed25519.seed"])
    o = 0

    def take(n):
        nonlocal o
        o += n
        return b[o - n:o]
    version, seq = take(1), take(8)
    edb, ik, iksig = take(32), take(32), take(64)
    spk_id, created, spk, spksig = take(4), take(8), take(32), take(64)
    lr_id, lrk, lrsig = take(4), take(32), take(64)
    flag = take(1)
    kem = b""
    if flag == b"\x01":
        kem_id, ek, kemsig = take(4), take(1568), take(64)
        kem = kem_id + ek
    n = struct.unpack(">H", take(2))[0]
    opks = [take(36) for _ in range(n)]
    sig = take(64)
    check(name + " bundle length", o, len(b))
    check(name + " bundle size formula",
          len(b), 412 + (1636 if kem else 0) + 36 * n)
    check(name + " bundle version", version, b"\x01")
    check(name + " bundle ed25519", edb, bytes.fromhex(c["B.ed25519.public"]))
    check(name + " bundle IK", ik, bytes.fromhex(c["B.identity.public"]))
    check(name + " bundle SPK", spk, bytes.fromhex(c["B.signed.public"]))
    check(name + " bundle SPK id", spk_id, u32(int(c["B.signed.id"])))
    check(name + " bundle created", created,
          struct.pack(">q", int(c["B.signed.created"])))
    if "B.last-resort.public" in c:
        check(name + " bundle LRK", lrk,
              bytes.fromhex(c["B.last-resort.public"]))
    if "B.mlkem.encapsulation-key" in c:
        check(name + " bundle ek", kem[4:],
              bytes.fromhex(c["B.mlkem.encapsulation-key"]))
    ids = [struct.unpack(">I", e[0:4])[0] for e in opks]
    check(name + " bundle ids ascending", ids, sorted(set(ids)))
    sigs = [
        (iksig, b"exopeer-identity-v1" + ik),
        (spksig, b"exopeer-signed-prekey-v1" + spk_id + created + spk),
        (lrsig, b"exopeer-last-resort-prekey-v1" + lr_id + lrk),
        (sig, b"exopeer-bundle-v1" + b[:-64]),
    ]
    if kem:
        sigs.append((kemsig, b"exopeer-mlkem1024-prekey-v1" + kem))
    for i, (s, m) in enumerate(sigs):
        check(name + " bundle signature %d verifies" % i,
              ed_verify(edb, s, m), True)
    # Rebuild from the parsed public parts and B's seed.
    out = version + seq + ed_pub(seed) + ik
    out += ed_sign(seed, b"exopeer-identity-v1" + ik)
    out += spk_id + created + spk
    out += ed_sign(seed, b"exopeer-signed-prekey-v1" + spk_id + created + spk)
    out += lr_id + lrk + ed_sign(seed, b"exopeer-last-resort-prekey-v1" +
                                 lr_id + lrk)
    out += flag
    if kem:
        out += kem + ed_sign(seed, b"exopeer-mlkem1024-prekey-v1" + kem)
    out += struct.pack(">H", n) + b"".join(opks)
    out += ed_sign(seed, b"exopeer-bundle-v1" + out)
    check(name + " bundle rebuilt", out, b)
    return n, ids


def check_handshake(path, pq):
    for case, c in read_cases(path).items():
        name = "%s %s" % (os.path.basename(path), case)
        h = lambda k: bytes.fromhex(c[k])
        ed_a, ed_b = ed_pub(h("A.ed25519.seed")), ed_pub(h("B.ed25519.seed"))
        check(name + " A.ed25519.public", ed_a, h("A.ed25519.public"))
        check(name + " B.ed25519.public", ed_b, h("B.ed25519.public"))
        ik_a, ek_a = h("A.identity.private"), h("A.ephemeral.private")
        ik_b, spk_b = h("B.identity.private"), h("B.signed.private")
        for k, v in (("A.identity", ik_a), ("A.ephemeral", ek_a),
                     ("B.identity", ik_b), ("B.signed", spk_b)):
            check(name + " " + k + ".public", pub(v), h(k + ".public"))
        n, ids = check_bundle(name, c, c["bundle"])
        if "B.one-time.private" in c:
            kind, pk_b, pk_id = 1, h("B.one-time.private"), int(
                c["B.one-time.id"])
            r = struct.unpack(">I", h("A.pick"))[0]
            check(name + " pick r mod n", ids[r % n], pk_id)
        else:
            check(name + " no one-time prekey", n, 0)
            kind, pk_b, pk_id = 2, h("B.last-resort.private"), int(
                c["B.last-resort.id"])
        # Initiator's side.
        bundle_pk = pub(pk_b)
        dhs = [dh(ik_a, pub(spk_b)), dh(ek_a, pub(ik_b)),
               dh(ek_a, pub(spk_b)), dh(ek_a, bundle_pk)]
        # Responder's side.
        dhs_b = [dh(spk_b, pub(ik_a)), dh(ik_b, pub(ek_a)),
                 dh(spk_b, pub(ek_a)), dh(pk_b, pub(ek_a))]
        check(name + " DHs agree", dhs, dhs_b)
        for i, d in enumerate(dhs):
            check(name + " DH%d" % (i + 1), d, h("DH%d" % (i + 1)))
        info = PQHANDSHAKE if pq else HANDSHAKE
        check(name + " info", info, c["info"].encode())
        parts = dhs + ([h("SS")] if pq else [])
        root, hka, nhkb = handshake_kdf(parts, info)
        check(name + " secret.root", root, h("secret.root"))
        check(name + " secret.hka", hka, h("secret.hka"))
        check(name + " secret.nhkb", nhkb, h("secret.nhkb"))
        ad = b"exopeer-ad-v1" + ed_a + pub(ik_a) + ed_b + pub(ik_b)
        check(name + " AD", ad, h("AD"))
        # Header, version 2: the clear part, then IK_A and its signature
        # sealed under HKDF(DH3) with the clear part as associated data.
        hdr = bytes([2, kind, 1 if pq else 0]) + ed_a
        hdr += pub(ek_a) + u32(int(c["B.signed.id"])) + u32(pk_id)
        if pq:
            hdr += u32(int(c["B.mlkem.id"])) + h("mlkem.ciphertext")
        sig = ed_sign(h("A.ed25519.seed"), b"exopeer-identity-v1" + pub(ik_a))
        seal = hkdf(b"\0" * 32, dhs[2], INITIAL_IDENTITY, 44)
        hdr += AESGCM(seal[:32]).encrypt(seal[32:], pub(ik_a) + sig, hdr)
        check(name + " header", hdr, h("header"))
        check(name + " header size", len(hdr), 1759 if pq else 187)
        # The responder's side: DH3 from the clear EK_A opens the identity.
        wire = h("header")
        clear, sealed = wire[:-112], wire[-112:]
        seal_b = hkdf(b"\0" * 32, dh(spk_b, clear[35:67]), INITIAL_IDENTITY, 44)
        opened = AESGCM(seal_b[:32]).decrypt(seal_b[32:], sealed, clear)
        check(name + " opened IK_A", opened[:32], pub(ik_a))
        check(name + " opened signature verifies", ed_verify(
            ed_a, opened[32:], b"exopeer-identity-v1" + opened[:32]), True)
        check(name + " IK_A not in the clear", pub(ik_a) in wire, False)


# --- Double Ratchet with header encryption --------------------------------

class Session:
    """doc.go's state and Decrypt, literally."""

    def __init__(self, ad):
        self.ad = ad
        self.DHs = None
        self.DHr = self.CKs = self.CKr = self.HKs = self.HKr = None
        self.NHKs = self.NHKr = None
        self.RK = None
        self.Ns = self.Nr = self.PN = 0
        self.skipped = []  # [(hk, n, mk)], oldest first

    @classmethod
    def initiator(cls, sk, hka, nhkb, ad, ratchet_priv, bob_spk_pub):
        s = cls(ad)
        s.DHs, s.DHr = ratchet_priv, bob_spk_pub
        s.RK, s.CKs, s.NHKs = kdf_rk_he(sk, dh(s.DHs, s.DHr))
        s.HKs, s.NHKr = hka, nhkb
        return s

    @classmethod
    def responder(cls, sk, hka, nhkb, ad, spk_priv):
        s = cls(ad)
        s.DHs, s.RK, s.NHKs, s.NHKr = spk_priv, sk, nhkb, hka
        return s

    def encrypt(self, plaintext, rand):
        """rand(n) gives the caller's random bytes, in doc order."""
        if self.step_due():
            self.DHs = rand(32)
            self.RK, self.CKs, self.NHKs = kdf_rk_he(
                self.RK, dh(self.DHs, self.DHr))
        if self.CKs is None:
            raise ValueError("cannot send")
        if self.Ns == 0xFFFFFFFF:
            raise ValueError("chain exhausted")
        nonce = rand(12)
        self.CKs, mk = kdf_ck(self.CKs)
        header = pub(self.DHs) + u32(self.PN) + u32(self.Ns)
        self.Ns += 1
        head = bytes([VERSION]) + nonce + hencrypt(self.HKs, nonce, header)
        return head + encrypt(mk, plaintext, self.ad + head)

    def step_due(self):
        """A step's sending half is due (and a second header under NHKr
        is refused): the session has DHr and no sending chain. A
        responder that opened nothing has neither, and cannot send."""
        return self.DHr is not None and self.CKs is None

    def encode(self):
        """MarshalBinary's layout (doc.go, the stored session)."""
        flags = 0
        for bit, v in ((1, self.DHr), (2, self.CKs), (4, self.CKr),
                       (8, self.HKs), (16, self.HKr)):
            if v is not None:
                flags |= bit
        out = bytes([1, flags, len(ROOT)]) + ROOT + bytes([len(MESSAGE)])
        out += MESSAGE + struct.pack(">H", len(self.ad)) + self.ad + self.DHs
        for k in (self.DHr, self.RK, self.CKs, self.CKr, self.HKs, self.HKr,
                  self.NHKs, self.NHKr):
            out += k if k is not None else bytes(32)
        out += struct.pack(">IIIH", self.Ns, self.Nr, self.PN,
                           len(self.skipped))
        for hk, n, mk in self.skipped:
            out += hk + u32(n) + mk
        return out

    def _skip(self, until):
        if self.Nr + MAX_SKIP < until:
            raise ValueError("too many skipped")
        if self.CKr is not None:
            while self.Nr < until:
                self.CKr, mk = kdf_ck(self.CKr)
                self.skipped.append((self.HKr, self.Nr, mk))
                if len(self.skipped) > MAX_SKIPPED:
                    self.skipped.pop(0)
                self.Nr += 1

    def _try_skipped(self, m, hk, n):
        for i, (shk, sn, mk) in enumerate(self.skipped):
            if shk == hk and sn == n:
                p = decrypt(mk, m[69:], self.ad + m[:69])
                del self.skipped[i]
                return p
        raise ValueError("no skipped key")

    def decrypt(self, m):
        """Transactional: works on a copy, keeps it only on success."""
        import copy
        t = copy.deepcopy(self)
        p = t._decrypt(bytes(m))
        self.__dict__.update(t.__dict__)
        return p

    def _decrypt(self, m):
        if len(m) < OVERHEAD or m[0] != VERSION:
            raise ValueError("short or bad version")
        hd = hdecrypt(self.HKr, m)
        if hd is not None:
            _, pn, n = hd
            if n < self.Nr:
                return self._try_skipped(m, self.HKr, n)
            return self._current(m, n)
        for hk in dict.fromkeys(k for k, _, _ in self.skipped):
            if hk == self.HKr:
                continue
            hd = hdecrypt(hk, m)
            if hd is not None:
                return self._try_skipped(m, hk, hd[2])
        hd = hdecrypt(self.NHKr, m)
        if hd is None:
            raise ValueError("no header key")
        if self.step_due():
            raise ValueError("second step before sending")
        dhr, pn, n = hd
        self._skip(pn)
        self.PN, self.Ns, self.Nr = self.Ns, 0, 0
        self.HKs, self.HKr, self.DHr = self.NHKs, self.NHKr, dhr
        self.RK, self.CKr, self.NHKr = kdf_rk_he(self.RK, dh(self.DHs, dhr))
        self.CKs = None
        return self._current(m, n)

    def _current(self, m, n):
        if n == 0xFFFFFFFF:
            raise ValueError("N = 2^32-1")
        self._skip(n)
        self.CKr, mk = kdf_ck(self.CKr)
        self.Nr += 1
        return decrypt(mk, m[69:], self.ad + m[:69])


def read_steps(path):
    head, steps, cur = {}, [], None
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("step "):
            _, num, direction = line.split()
            cur = {"num": int(num), "dir": direction}
            steps.append(cur)
            continue
        k, v = line.split(" ", 1)
        (cur if cur is not None else head)[k] = bytes.fromhex(v)
    return head, steps


def check_steps(path):
    head, steps = read_steps(path)
    a = Session.initiator(head["SK"], head["shared_hka"], head["shared_nhkb"],
                          head["AD"], head["a.ratchet.private"],
                          pub(head["b.ratchet.private"]))
    b = Session.responder(head["SK"], head["shared_hka"], head["shared_nhkb"],
                          head["AD"], head["b.ratchet.private"])
    for k in ("RK", "CKs", "NHKs"):
        check("init a." + k, getattr(a, k), head["a." + k])
    peers = {"a": a, "b": b}
    for st in steps:
        snd, rcv = st["dir"].split("->")
        s, r = peers[snd], peers[rcv]
        name = "step %d %s" % (st["num"], st["dir"])
        msg = st["message"]
        # Receive first, against the recorded bytes: the doc alone opens it.
        try:
            p = r.decrypt(msg)
        except Exception as e:  # noqa: BLE001
            p = b"<refused: %s>" % str(e).encode()
        check(name + " decrypts", p, st["plaintext"])
        for k in ("RK", "CKr", "HKr", "NHKr"):
            check(name + " %s.%s" % (rcv, k), getattr(r, k), st[rcv + "." + k])
        # A replay is refused.
        try:
            r.decrypt(msg)
            check(name + " replay refused", False, True)
        except Exception:  # noqa: BLE001
            check(name + " replay refused", True, True)
        # Send with the recorded randomness: the same bytes.
        rand_src = []
        if s.step_due():
            rand_src.append(st[snd + ".ratchet.private"])
        rand_src.append(msg[1:13])

        def rand(n, src=rand_src):
            v = src.pop(0)
            assert len(v) == n
            return v
        try:
            out = s.encrypt(st["plaintext"], rand)
        except Exception as e:  # noqa: BLE001
            check(name + " encrypts", str(e), "")
            continue
        check(name + " message bytes", out, msg)
        check(name + " %s.ratchet.public" % snd, pub(s.DHs),
              st[snd + ".ratchet.public"])
        for k in ("RK", "CKs", "HKs", "NHKs"):
            check(name + " %s.%s" % (snd, k), getattr(s, k), st[snd + "." + k])
        check(name + " overhead", len(out) - len(st["plaintext"]), OVERHEAD)


def check_transcript(path):
    """A conversation TestInteropPython wrote (interopTranscript): every
    message sealed to the same bytes from the same randomness, opened or
    refused as there, every stored session encoded to the same bytes."""
    head, peers, msgs = {}, {}, {}
    for i, line in enumerate(open(path)):
        f = line.split()
        name = "transcript line %d: %s" % (i + 1, " ".join(f[:3]))
        if f[0] not in ("send", "open", "refuse", "state"):
            head[f[0]] = bytes.fromhex(f[1])
            continue
        if not peers:
            peers["a"] = Session.initiator(
                head["SK"], head["shared_hka"], head["shared_nhkb"],
                head["AD"], head["a.ratchet.private"],
                pub(head["b.ratchet.private"]))
            peers["b"] = Session.responder(
                head["SK"], head["shared_hka"], head["shared_nhkb"],
                head["AD"], head["b.ratchet.private"])
        s = peers[f[1]]
        if f[0] == "send":
            label, rnd, want = f[2], bytes.fromhex(f[3]), bytes.fromhex(f[4])
            src = [rnd]

            def rand(n, src=src):
                v, src[0] = src[0][:n], src[0][n:]
                return v
            try:
                got = s.encrypt(label.encode(), rand)
            except Exception as e:  # noqa: BLE001
                got = b"<" + str(e).encode() + b">"
            check(name, got, want)
            check(name + " all randomness read", src[0], b"")
            msgs[label] = want
        elif f[0] == "open":
            try:
                got = s.decrypt(msgs[f[2]])
            except Exception as e:  # noqa: BLE001
                got = b"<refused: " + str(e).encode() + b">"
            check(name, got, f[2].encode())
        elif f[0] == "refuse":
            before = s.encode()
            try:
                s.decrypt(bytes.fromhex(f[2]))
                check(name, "opened", "refused")
            except Exception:  # noqa: BLE001
                check(name, "refused", "refused")
            check(name + " unchanged", s.encode(), before)
        else:
            check(name, s.encode(), bytes.fromhex(f[2]))


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
        os.path.abspath(__file__))
    check_handshake(os.path.join(d, "x3dh.txt"), pq=False)
    check_handshake(os.path.join(d, "pqxdh.txt"), pq=True)
    check_steps(os.path.join(d, "ratchet-steps.txt"))
    if len(sys.argv) > 2:
        check_transcript(sys.argv[2])
    if failures:
        print("%d FAILED" % len(failures))
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
