package hostsim

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/testca"
	"github.com/posagent/posagent/provisioning"
)

// CAPK is a certification authority public key the host serves in the IC
// public key download: DF05 expiry, DF06 hash algorithm, DF07 key algorithm,
// DF02 modulus, DF04 exponent and, computed, DF03 checksum.
type CAPK struct {
	RID       []byte // 9F06, 5 bytes
	Index     byte   // 9F22
	Expiry    string // YYYYMMDD
	Hash      byte   // DF06: 01 is SHA-1
	Algorithm byte   // DF07: 01 is RSA
	Modulus   []byte // DF02
	Exponent  []byte // DF04
}

// Checksum is DF03: SHA-1 over RID, index, modulus and exponent (EMV Book 2
// §5.2), which the terminal checks before it trusts the key.
func (k CAPK) Checksum() []byte {
	h := sha1.New()
	h.Write(k.RID)
	h.Write([]byte{k.Index})
	h.Write(k.Modulus)
	h.Write(k.Exponent)
	return h.Sum(nil)
}

func (k CAPK) String() string { return fmt.Sprintf("%X/%02X", k.RID, k.Index) }

// Terminal is k as a terminal's download store holds it once downloaded
// (checksum included): what a test gives the kernel without running the
// download.
func (k CAPK) Terminal() provisioning.CAPK {
	return provisioning.CAPK{RID: k.RID, Index: k.Index, Expiry: k.Expiry, HashAlgo: k.Hash, KeyAlgo: k.Algorithm,
		Modulus: k.Modulus, Exponent: k.Exponent, Checksum: k.Checksum()}
}

func (k CAPK) check() error {
	if len(k.RID) != 5 {
		return fmt.Errorf("hostsim: CAPK %s: RID is not 5 bytes", k)
	}
	if _, err := strconv.Atoi(k.Expiry); err != nil || len(k.Expiry) != 8 {
		return fmt.Errorf("hostsim: CAPK %s: expiry %q is not YYYYMMDD", k, k.Expiry)
	}
	if n := len(k.Modulus); n == 0 || n > 248 {
		return fmt.Errorf("hostsim: CAPK %s: modulus of %d bytes (EMV allows up to 248)", k, n)
	}
	if n := len(k.Exponent); n != 1 && n != 3 {
		return fmt.Errorf("hostsim: CAPK %s: exponent of %d bytes (EMV allows 1 or 3)", k, n)
	}
	return nil
}

type capkFile struct {
	Keys []struct {
		RID       string `yaml:"rid"`
		Index     string `yaml:"index"`
		Expiry    string `yaml:"expiry"`
		Hash      string `yaml:"hash"`
		Algorithm string `yaml:"algorithm"`
		Exponent  string `yaml:"exponent"`
		Modulus   string `yaml:"modulus"`
		Checksum  string `yaml:"checksum"`
	} `yaml:"keys"`
}

// LoadCAPKs reads CA public keys from dir/capk.yaml in the layout of
// agent/sim/testca's (RID, index, expiry, hash and key algorithm, exponent
// and modulus in hex, and the checksum, which must match the one computed).
func LoadCAPKs(dir string) ([]CAPK, error) {
	b, err := os.ReadFile(filepath.Join(dir, "capk.yaml"))
	if err != nil {
		return nil, fmt.Errorf("hostsim: capk: %w", err)
	}
	return parseCAPKs(b, dir)
}

// DefaultCAPKs are agent/sim/testca's TEST-ONLY keys, what a host serves
// when its Config names no others: a real host always has UnionPay's CA
// keys to offer.
var DefaultCAPKs = sync.OnceValues(func() ([]CAPK, error) { return parseCAPKs(testca.CAPKYAML, "testca") })

func parseCAPKs(b []byte, dir string) ([]CAPK, error) {
	var f capkFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("hostsim: capk: %w", err)
	}
	if len(f.Keys) == 0 {
		return nil, fmt.Errorf("hostsim: capk: %s lists no keys", dir)
	}
	var out []CAPK
	for i, e := range f.Keys {
		var k CAPK
		var idx, hash, alg []byte
		for _, p := range []struct {
			dst  *[]byte
			s    string
			name string
		}{{&k.RID, e.RID, "rid"}, {&idx, e.Index, "index"}, {&hash, e.Hash, "hash"}, {&alg, e.Algorithm, "algorithm"},
			{&k.Exponent, e.Exponent, "exponent"}, {&k.Modulus, e.Modulus, "modulus"}} {
			v, err := hex.DecodeString(p.s)
			if err != nil {
				return nil, fmt.Errorf("hostsim: capk: key %d: %s is not hex", i+1, p.name)
			}
			*p.dst = v
		}
		if len(idx) != 1 || len(hash) != 1 || len(alg) != 1 {
			return nil, fmt.Errorf("hostsim: capk: key %d: index, hash and algorithm are one byte each", i+1)
		}
		k.Index, k.Hash, k.Algorithm, k.Expiry = idx[0], hash[0], alg[0], e.Expiry
		if err := k.check(); err != nil {
			return nil, err
		}
		if sum, err := hex.DecodeString(e.Checksum); err != nil || !bytes.Equal(sum, k.Checksum()) {
			return nil, fmt.Errorf("hostsim: capk: key %s: checksum does not match the key", k)
		}
		out = append(out, k)
	}
	return out, nil
}

// Expiry formats of DF05: public POSPs and the public terminal apps say the
// CUP answers 8 ASCII digits (LiaoYang_POS Src/tranproc.c SaveCapkInfoItem,
// "目前CUP是按照这个ASCII数字串返回的"; chinaljp/posp and ConardLKL/posp_server
// send them so); the same terminal also takes 4 BCD bytes, which the Centerm
// app's own key table uses for some keys.
const (
	ExpiryASCII = "ascii"
	ExpiryBCD   = "bcd"
)

func (s *Server) expiry(k CAPK) []byte {
	if s.cfg.ExpiryFormat == ExpiryBCD {
		b, _ := hex.DecodeString(k.Expiry) // checked: 8 digits
		return b
	}
	return []byte(k.Expiry)
}

// Field 62 control byte of the download answers (chinaljp/posp
// trunk/src/lib/trans/admin/status_upload.c PubKeyInfo): '0' the host has
// nothing (more), '1' everything is in this answer, '2' more follow (the
// terminal asks again with its count), '3' this is the last of several. The
// other public POSP (ConardLKL/posp_server M_DownCAPkInfoChecker) answers '1'
// on the last page too: Config.LastPageFlag.
const (
	pageNone = '0'
	pageAll  = '1'
	pageMore = '2'
	pageLast = '3'
)

// maxField62 is the spec's bound on field 62 (LLLVAR binary).
const maxField62 = 512

// errQuery is the error of a download query whose field 62 is not '1'
// followed by the count of items the terminal already has.
var errQuery = errors.New("hostsim: query field 62 is not '1' and a count")

// parseQuery reads a download query's field 62: '1' and the count of items
// the terminal already received, in ASCII digits (LiaoYang_POS QueryEmvCapk
// sends "1%02d"; the public POSPs read the digits after the '1').
func parseQuery(b []byte) (int, error) {
	if len(b) == 0 || b[0] != '1' || len(b) > 4 {
		return 0, errQuery
	}
	if len(b) == 1 {
		return 0, nil
	}
	for _, c := range b[1:] {
		if c < '0' || c > '9' {
			return 0, errQuery
		}
	}
	n, _ := strconv.Atoi(string(b[1:]))
	return n, nil
}

// page is the answer to a query: the control byte and the items from offset,
// as many as page allows and field 62 holds.
func (s *Server) page(items [][]byte, offset, page int) []byte {
	if offset >= len(items) {
		return []byte{pageNone}
	}
	out := []byte{0}
	end := offset
	for end < len(items) && end-offset < page && len(out)+len(items[end]) <= maxField62 {
		out = append(out, items[end]...)
		end++
	}
	switch {
	case end < len(items):
		out[0] = pageMore
	case offset == 0:
		out[0] = pageAll
	default:
		out[0] = s.cfg.LastPageFlag
	}
	return out
}

// capkList is one query item per key: RID, index, expiry.
func (s *Server) capkList() [][]byte {
	var out [][]byte
	for _, k := range s.capks {
		var b []byte
		b = emv.EncodeTLV(b, 0x9F06, k.RID)
		b = emv.EncodeTLV(b, 0x9F22, []byte{k.Index})
		b = emv.EncodeTLV(b, 0xDF05, s.expiry(k))
		out = append(out, b)
	}
	return out
}

// errKeyRequest is the error of a key or AID download whose field 62 does
// not name one.
var errKeyRequest = errors.New("hostsim: download field 62 names no key")

// parseKeyRequest reads a CAPK download's field 62: 9F06 RID and 9F22 index
// as TLV (LiaoYang_POS DownLoadCAPK; the public POSPs decode it so).
func parseKeyRequest(b []byte) ([]byte, byte, error) {
	objs, err := emv.DecodeTLV(b)
	if err != nil {
		return nil, 0, errKeyRequest
	}
	rid, ok1 := emv.Find(objs, 0x9F06)
	idx, ok2 := emv.Find(objs, 0x9F22)
	if !ok1 || !ok2 || len(rid.Value) != 5 || len(idx.Value) != 1 {
		return nil, 0, errKeyRequest
	}
	return rid.Value, idx.Value[0], nil
}

// capkAnswer is '1' and the key as TLV, or '0' for a key the host has not.
func (s *Server) capkAnswer(rid []byte, idx byte) ([]byte, bool) {
	for _, k := range s.capks {
		if !bytes.Equal(k.RID, rid) || k.Index != idx {
			continue
		}
		b := []byte{pageAll}
		b = emv.EncodeTLV(b, 0x9F06, k.RID)
		b = emv.EncodeTLV(b, 0x9F22, []byte{k.Index})
		b = emv.EncodeTLV(b, 0xDF05, s.expiry(k))
		b = emv.EncodeTLV(b, 0xDF06, []byte{k.Hash})
		b = emv.EncodeTLV(b, 0xDF07, []byte{k.Algorithm})
		b = emv.EncodeTLV(b, 0xDF02, k.Modulus)
		b = emv.EncodeTLV(b, 0xDF04, k.Exponent)
		b = emv.EncodeTLV(b, 0xDF03, k.Checksum())
		return b, true
	}
	return []byte{pageNone}, false
}

// SetCAPKs replaces the host's CA public keys, and triggers the schedule's
// ChangeCAPK demands for every terminal it knows.
func (s *Server) SetCAPKs(keys []CAPK) error {
	for _, k := range keys {
		if err := k.check(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.capks = append([]CAPK(nil), keys...)
	s.changed(ChangeCAPK)
	return nil
}
