package loopbench_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkFetchFloor measures, with the standard library alone and no
// exopeer code, what moving 1 GiB of blob blocks from one store to
// another over an encrypted loopback connection cannot do without: the
// seeder reading 1 MiB files, TLS 1.3 (AES-GCM, what libp2p's TCP
// transport negotiates) through loopback TCP at both ends, the fetcher's
// SHA-256 of each block (the check of bytes from the network) and its
// writes of 1 MiB files (no fsync). Each part reports CPU-seconds per GiB
// (getrusage of this process, which runs both ends); their sum is the
// floor under the two-process fetch's CPU-s/GiB on this machine
// (BenchmarkFetchTwoProcesses), whatever the protocol. Measured on the
// shared 2-core machine on 26 November 2026 (load 0.7-2, three runs):
// writing the files 0.38-1.44 CPU-s/GiB (more when the page cache has to
// give room), reading them 0.09, SHA-256 0.61, TLS 1.3 at both ends
// 1.23-1.45 (plain TCP 0.48): 2.3-3.6 CPU-s/GiB in all, at or above issue
// 12's goal of 2.5 before any multiplexing, framing or bookkeeping.
//
//	go test ./internal/loopbench -run '^$' -bench FetchFloor -benchtime 1x
func BenchmarkFetchFloor(b *testing.B) {
	const blocks, size = 1024, 1 << 20
	buf := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{9})
	rng.Read(buf)
	dir := b.TempDir()
	name := func(i int) string { return filepath.Join(dir, fmt.Sprintf("%02x", i%256), fmt.Sprintf("%d.data", i)) }
	part := func(label string, f func(b *testing.B)) {
		b.Run(label, func(b *testing.B) {
			b.SetBytes(blocks * size)
			var cpu time.Duration
			for b.Loop() {
				c0 := selfCPU(b)
				f(b)
				cpu += selfCPU(b) - c0
			}
			b.ReportMetric(cpu.Seconds()/float64(b.N), "CPU-s/GiB")
		})
	}
	part("write-files", func(b *testing.B) {
		for i := range blocks {
			if err := os.MkdirAll(filepath.Dir(name(i)), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(name(i), buf, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	})
	part("read-files", func(b *testing.B) {
		for i := range blocks {
			f, err := os.Open(name(i))
			if err != nil {
				b.Fatal(err)
			}
			_, err = io.ReadFull(f, buf)
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	part("sha256", func(b *testing.B) {
		for range blocks {
			sha256.Sum256(buf)
		}
	})
	part("aes-gcm-seal", func(b *testing.B) {
		blk, err := aes.NewCipher(make([]byte, 32))
		if err != nil {
			b.Fatal(err)
		}
		g, err := cipher.NewGCM(blk)
		if err != nil {
			b.Fatal(err)
		}
		out := make([]byte, 0, size+g.Overhead())
		nonce := make([]byte, g.NonceSize())
		for range blocks {
			out = g.Seal(out[:0], nonce, buf, nil)
		}
	})
	part("tls13-loopback", func(b *testing.B) { stream(b, blocks, buf, true) })
	part("tcp-loopback", func(b *testing.B) { stream(b, blocks, buf, false) })
}

// stream sends n times buf over a loopback TCP connection, in TLS 1.3 if
// secure, to a reader in this process, and waits until it has read all.
func stream(b *testing.B, n int, buf []byte, secure bool) {
	var ln net.Listener
	var err error
	var client *tls.Config
	if secure {
		cert, err := selfSigned()
		if err != nil {
			b.Fatal(err)
		}
		ln, err = tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
		if err != nil {
			b.Fatal(err)
		}
		client = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
	} else if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	total := int64(n) * int64(len(buf))
	got := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		_, err = io.CopyBuffer(io.Discard, io.LimitReader(c, total), make([]byte, 256<<10))
		got <- err
	}()
	var c net.Conn
	if secure {
		c, err = tls.Dial("tcp", ln.Addr().String(), client)
	} else {
		c, err = net.Dial("tcp", ln.Addr().String())
	}
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for range n {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-got; err != nil {
		b.Fatal(err)
	}
}

// selfSigned is a throwaway P-256 certificate for the TLS part.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.NewChaCha8([32]byte{1}))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loopbench"}, NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.NewChaCha8([32]byte{2}), tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// selfCPU is this process's user and system CPU time so far.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
