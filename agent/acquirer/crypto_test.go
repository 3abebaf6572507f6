package acquirer

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// openssl runs `openssl enc` as the independent implementation the
// known-answer tests compare against. Single DES lives in OpenSSL 3's legacy
// provider.
func openssl(t *testing.T, cipherName string, key, iv, data []byte, decrypt bool) []byte {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed; the public-vector tests still run")
	}
	args := []string{"enc", "-" + cipherName, "-K", hex.EncodeToString(key), "-nopad"}
	if iv != nil {
		args = append(args, "-iv", hex.EncodeToString(iv))
	}
	if decrypt {
		args = append(args, "-d")
	}
	if cipherName == "des-ecb" || cipherName == "des-cbc" {
		args = append(args, "-provider", "legacy", "-provider", "default")
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %s: %v: %s", cipherName, err, stderr.String())
	}
	return out
}

// opensslECB picks the openssl cipher for the key length, as newBlock does.
func opensslECB(t *testing.T, key, data []byte, decrypt bool) []byte {
	t.Helper()
	name := map[int]string{8: "des-ecb", 16: "des-ede", 24: "des-ede3"}[len(key)]
	if name == "" {
		t.Fatalf("no openssl cipher for a %d-byte key", len(key))
	}
	return opensslECB2(t, name, key, data, decrypt)
}

func opensslECB2(t *testing.T, name string, key, data []byte, decrypt bool) []byte {
	t.Helper()
	return openssl(t, name, key, nil, data, decrypt)
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var testKeys = []string{
	"0123456789ABCDEF",
	"1C2D3E4F5A6B7C8D",
	"0123456789ABCDEFFEDCBA9876543210",
	"11111111111111112222222222222222",
	"0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123",
}

// TestDESPublicVector pins single DES to the classic published vector
// (key 0123456789ABCDEF, "Now is t" → 3FA40E8A984D4815), independent of openssl.
func TestDESPublicVector(t *testing.T) {
	got, err := EncryptECB(mustHex(t, "0123456789ABCDEF"), []byte("Now is t"))
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHex(t, "3FA40E8A984D4815"); !bytes.Equal(got, want) {
		t.Fatalf("DES(Now is t) = %X, want %X", got, want)
	}
	// A double-length key with equal halves is single DES: 3DES keying option 3.
	got2, err := EncryptECB(mustHex(t, "0123456789ABCDEF0123456789ABCDEF"), []byte("Now is t"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got2, got) {
		t.Fatalf("3DES K1=K2 = %X, want %X", got2, got)
	}
}

func TestECBAgainstOpenSSL(t *testing.T) {
	data := mustHex(t, "00112233445566778899AABBCCDDEEFF0102030405060708")
	for _, k := range testKeys {
		key := mustHex(t, k)
		t.Run(fmt.Sprint(len(key)*8), func(t *testing.T) {
			got, err := EncryptECB(key, data)
			if err != nil {
				t.Fatal(err)
			}
			if want := opensslECB(t, key, data, false); !bytes.Equal(got, want) {
				t.Fatalf("encrypt = %X, openssl %X", got, want)
			}
			back, err := DecryptECB(key, got)
			if err != nil || !bytes.Equal(back, data) {
				t.Fatalf("decrypt = %X, %v", back, err)
			}
		})
	}
}

func TestCheckValueAgainstOpenSSL(t *testing.T) {
	for _, k := range testKeys {
		key := mustHex(t, k)
		got, err := CheckValue(key)
		if err != nil {
			t.Fatal(err)
		}
		want := opensslECB(t, key, make([]byte, 8), false)[:4]
		if !bytes.Equal(got, want) {
			t.Errorf("%d-bit key: CV %X, openssl %X", len(key)*8, got, want)
		}
	}
}

func TestBadLengths(t *testing.T) {
	if _, err := EncryptECB(make([]byte, 7), make([]byte, 8)); !errors.Is(err, ErrKeyLength) {
		t.Errorf("7-byte key: %v", err)
	}
	if _, err := EncryptECB(make([]byte, 8), make([]byte, 9)); !errors.Is(err, ErrBlockLength) {
		t.Errorf("9-byte data: %v", err)
	}
	if _, err := ComputeMAC(MACX919, make([]byte, 5), nil); !errors.Is(err, ErrKeyLength) {
		t.Errorf("5-byte MAK: %v", err)
	}
}

// field62 builds a sign-on field 62 with openssl: each key encrypted under
// the TMK followed by its openssl-computed check value.
func field62(t *testing.T, tmk []byte, keys ...[]byte) []byte {
	t.Helper()
	var out []byte
	for _, k := range keys {
		out = append(out, opensslECB(t, tmk, k, false)...)
		out = append(out, opensslECB(t, k, make([]byte, 8), false)[:4]...)
	}
	return out
}

func TestDecryptWorkingKeys(t *testing.T) {
	tmk := mustHex(t, "0123456789ABCDEFFEDCBA9876543210")
	pik16 := mustHex(t, "1111111111111111AAAAAAAAAAAAAAAA")
	mak16 := mustHex(t, "2222222222222222BBBBBBBBBBBBBBBB")
	tdk16 := mustHex(t, "3333333333333333CCCCCCCCCCCCCCCC")
	pik8, mak8 := mustHex(t, "4444444444444444"), mustHex(t, "5555555555555555")

	t.Run("004", func(t *testing.T) {
		f := field62(t, tmk, pik16, mak16, tdk16)
		wk, err := DecryptWorkingKeys(tmk, DoubleDES, f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(wk.PIK, pik16) || !bytes.Equal(wk.MAK, mak16) || !bytes.Equal(wk.TDK, tdk16) {
			t.Fatal("keys differ")
		}
		enc, err := EncryptWorkingKeys(tmk, DoubleDES, wk)
		if err != nil || !bytes.Equal(enc, f) {
			t.Fatalf("EncryptWorkingKeys differs from openssl: %v", err)
		}
		// Any single bit of a check value flipped rejects the whole set.
		for _, at := range []int{16, 36, 56} {
			bad := bytes.Clone(f)
			bad[at] ^= 1
			if _, err := DecryptWorkingKeys(tmk, DoubleDES, bad); !errors.Is(err, ErrKeyCheck) {
				t.Errorf("CV byte %d flipped: %v", at, err)
			}
		}
		if _, err := DecryptWorkingKeys(mustHex(t, "00000000000000000000000000000001"), DoubleDES, f); !errors.Is(err, ErrKeyCheck) {
			t.Errorf("wrong TMK: %v", err)
		}
	})
	t.Run("004 without TDK", func(t *testing.T) {
		wk, err := DecryptWorkingKeys(tmk, DoubleDES, field62(t, tmk, pik16, mak16))
		if err != nil || wk.TDK != nil {
			t.Fatalf("%v, TDK %v", err, wk.TDK)
		}
	})
	t.Run("001", func(t *testing.T) {
		f := field62(t, tmk, pik8, mak8)
		wk, err := DecryptWorkingKeys(tmk, SingleDES, f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(wk.PIK, pik8) || !bytes.Equal(wk.MAK, mak8) {
			t.Fatal("keys differ")
		}
	})
	t.Run("lengths", func(t *testing.T) {
		for _, n := range []int{0, 23, 25, 59} {
			if _, err := DecryptWorkingKeys(tmk, DoubleDES, make([]byte, n)); err == nil {
				t.Errorf("004, %d bytes accepted", n)
			}
			if _, err := DecryptWorkingKeys(tmk, SingleDES, make([]byte, n)); err == nil {
				t.Errorf("001, %d bytes accepted", n)
			}
		}
		if _, err := DecryptWorkingKeys(tmk, DoubleNoTDK, make([]byte, 60)); err == nil {
			t.Error("mode 003 accepted a TDK")
		}
		if _, err := DecryptWorkingKeys(tmk, "002", make([]byte, 40)); err == nil {
			t.Error("mode 002 accepted")
		}
	})
	t.Run("003", func(t *testing.T) {
		f := field62(t, tmk, pik16, mak16)
		wk, err := DecryptWorkingKeys(tmk, DoubleNoTDK, f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(wk.PIK, pik16) || !bytes.Equal(wk.MAK, mak16) || wk.TDK != nil {
			t.Fatal("keys differ")
		}
		enc, err := EncryptWorkingKeys(tmk, DoubleNoTDK, wk)
		if err != nil || !bytes.Equal(enc, f) {
			t.Fatalf("EncryptWorkingKeys differs from openssl: %v", err)
		}
		if _, err := EncryptWorkingKeys(tmk, DoubleNoTDK, WorkingKeys{PIK: pik16, MAK: mak16, TDK: tdk16}); err == nil {
			t.Error("003 encrypted a TDK")
		}
	})
}

// TestSingleLengthMAK is the layout many hosts send in the double-length
// modes: PIK(16) CV, then the MAK as 8 bytes of ciphertext, 8 zero bytes
// and the check value of the 8-byte key. Every reference byte is openssl's
// (des-ede for the double-length TMK, des-ecb for the single MAK's check
// value).
func TestSingleLengthMAK(t *testing.T) {
	tmk := mustHex(t, "0123456789ABCDEFFEDCBA9876543210")
	pik16 := mustHex(t, "1111111111111111AAAAAAAAAAAAAAAA")
	mak8 := mustHex(t, "5E5E5E5E5E5E5E5E")
	tdk16 := mustHex(t, "3333333333333333CCCCCCCCCCCCCCCC")
	encMAK := opensslECB2(t, "des-ede", tmk, mak8, false)
	makCV := opensslECB2(t, "des-ecb", mak8, make([]byte, 8), false)[:4]
	var f []byte
	f = append(f, field62(t, tmk, pik16)...)
	f = append(append(append(f, encMAK...), make([]byte, 8)...), makCV...)
	f = append(f, field62(t, tmk, tdk16)...)

	for _, mode := range []KeyMode{DoubleDES, DoubleNoTDK} {
		in := f
		if mode == DoubleNoTDK {
			in = f[:40]
		}
		wk, err := DecryptWorkingKeys(tmk, mode, in)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if !bytes.Equal(wk.MAK, mak8) || !bytes.Equal(wk.PIK, pik16) {
			t.Fatalf("%s: MAK %d bytes, or keys differ", mode, len(wk.MAK))
		}
		enc, err := EncryptWorkingKeys(tmk, mode, wk)
		if err != nil || !bytes.Equal(enc, in) {
			t.Fatalf("%s: EncryptWorkingKeys differs from openssl: %v", mode, err)
		}
	}
	// Why the zero half matters: all 16 bytes decrypted (as openssl does
	// them) give a key whose check value is not the one sent.
	whole := opensslECB2(t, "des-ede", tmk, f[20:36], true)
	if cv := opensslECB(t, whole, make([]byte, 8), false)[:4]; bytes.Equal(cv, makCV) {
		t.Fatal("the 16-byte decryption matches the check value: the vector proves nothing")
	}
	bad := bytes.Clone(f)
	bad[33] = 1 // no longer a zero half: the 16 bytes are a double-length MAK
	if _, err := DecryptWorkingKeys(tmk, DoubleDES, bad); !errors.Is(err, ErrKeyCheck) {
		t.Errorf("a non-zero second half: %v", err)
	}
	bad = bytes.Clone(f)
	bad[39] ^= 1 // the single key's check value
	if _, err := DecryptWorkingKeys(tmk, DoubleDES, bad); !errors.Is(err, ErrKeyCheck) {
		t.Errorf("a wrong single-key check value: %v", err)
	}
	// The MAC runs single DES under the 8-byte MAK, with or without
	// mac_full_key: referenceUnionPayMAC is openssl's des-ecb.
	data := []byte("0200 the message from the MTI on")
	want := referenceUnionPayMAC(t, mak8, data)
	for _, full := range []bool{false, true} {
		got, err := ComputeMAC(MACUnionPayECB, MACKey(mak8, full), data)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("full=%v: MAC %q, openssl %q (%v)", full, got, want, err)
		}
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	k := Key(mustHex(t, "0123456789ABCDEFFEDCBA9876543210"))
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k),
		fmt.Sprintf("%v", WorkingKeys{PIK: k, MAK: k}), fmt.Sprintf("%+v", WorkingKeys{MAK: k})} {
		if strings.Contains(strings.ToUpper(s), "0123456789ABCDEF") || strings.Contains(s, "[1 35") {
			t.Fatalf("key leaked: %s", s)
		}
	}
	if got := k.String(); got != "key(kcv=08D7B4FB)" {
		t.Fatalf("String = %s", got)
	}
}

// referenceUnionPayMAC is the test's own rendering of PROTOCOLS.md §1 steps
// 1–5 with every DES operation done by openssl.
func referenceUnionPayMAC(t *testing.T, key, data []byte) []byte {
	t.Helper()
	x := make([]byte, 8)
	for i := 0; i < len(data); i++ {
		x[i%8] ^= data[i] // step 1: XOR of the zero-padded blocks
	}
	h := []byte(strings.ToUpper(hex.EncodeToString(x))) // step 2
	e := opensslECB(t, key, h[:8], false)               // step 3
	for i := range e {
		e[i] ^= h[8+i] // step 4
	}
	e = opensslECB(t, key, e, false)
	return []byte(strings.ToUpper(hex.EncodeToString(e))[:8]) // step 5
}

func referenceX919(t *testing.T, key, data []byte) []byte {
	t.Helper()
	padded := make([]byte, (len(data)+7)/8*8)
	copy(padded, data)
	cbc := openssl(t, "des-cbc", key[:8], make([]byte, 8), padded, false)
	last := cbc[len(cbc)-8:]
	if len(key) == 8 {
		return last
	}
	d := opensslECB2(t, "des-ecb", key[8:16], last, true)
	return opensslECB2(t, "des-ecb", key[:8], d, false)
}

func TestMACAgainstOpenSSL(t *testing.T) {
	msgs := [][]byte{
		mustHex(t, "0200702406C020C09A111962208888888888888800000000000000000100000102"),
		[]byte("12345678"),
		[]byte("a message that is not a multiple of eight"),
	}
	keys := []string{"1C2D3E4F5A6B7C8D", "0123456789ABCDEFFEDCBA9876543210"}
	for _, ks := range keys {
		key := mustHex(t, ks)
		for i, m := range msgs {
			t.Run(fmt.Sprintf("k%d/m%d", len(key), i), func(t *testing.T) {
				got, err := ComputeMAC(MACUnionPayECB, key, m)
				if err != nil {
					t.Fatal(err)
				}
				if want := referenceUnionPayMAC(t, key, m); !bytes.Equal(got, want) {
					t.Errorf("UnionPay MAC %q, reference %q", got, want)
				}
				if err := VerifyMAC(MACUnionPayECB, key, m, got); err != nil {
					t.Error(err)
				}
				got, err = ComputeMAC(MACX919, key, m)
				if err != nil {
					t.Fatal(err)
				}
				if want := referenceX919(t, key, m); !bytes.Equal(got, want) {
					t.Errorf("X9.19 %X, reference %X", got, want)
				}
				bad := bytes.Clone(m)
				bad[0] ^= 0x80
				if err := VerifyMAC(MACX919, key, bad, got); !errors.Is(err, ErrBadMAC) {
					t.Errorf("tampered message verified: %v", err)
				}
			})
		}
	}
}
