package cardsim_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/sim/cardsim"
)

func TestShippedProfilesLoad(t *testing.T) {
	files, err := filepath.Glob("../../../testdata/cards/*.yaml")
	if err != nil || len(files) < 8 {
		t.Fatalf("%d profiles, %v", len(files), err)
	}
	for _, f := range files {
		p, err := cardsim.LoadProfile(f)
		if err != nil {
			t.Fatal(err)
		}
		if p.Name+".yaml" != filepath.Base(f) {
			t.Errorf("%s: name %q does not match the file", f, p.Name)
		}
	}
}

func TestProfileValidation(t *testing.T) {
	for _, y := range []string{
		"pan: '12'\nexpiry: '301231'\napplications: [{aid: A000000333010101}]",
		"pan: '6222021234567890128'\nexpiry: '3012'\napplications: [{aid: A000000333010101}]",
		"pan: '6222021234567890128'\nexpiry: '301231'\napplications: []",
		"pan: '6222021234567890128'\nexpiry: '301231'\napplications: [{aid: A0}]",
		"pan: '6222021234567890128'\nexpiry: '301231'\ntypo: 1\napplications: [{aid: A000000333010101}]",
		"pan: '6222021234567890128'\nexpiry: '301231'\napplications: [{aid: A000000333010101}]\nfaults: [{at: nowhere, kind: mute}]",
		"pan: '6222021234567890128'\nexpiry: '301231'\napplications: [{aid: A000000333010101}]\nfaults: [{at: gpo, kind: status, sw: 'zz'}]",
		"pan: '6222021234567890128'\nexpiry: '301231'\nkey: '00'\napplications: [{aid: A000000333010101}]",
	} {
		if _, err := cardsim.ParseProfile([]byte(y)); !errors.Is(err, cardsim.ErrProfile) {
			t.Errorf("%q: %v, want ErrProfile", y, err)
		}
	}
}

// TestARQCKnownAnswer pins the algorithm the host simulator must mirror.
func TestARQCKnownAnswer(t *testing.T) {
	key, _ := hex.DecodeString(cardsim.DefaultKey)
	data, _ := hex.DecodeString("00000000010000000000000001560000000000015626112700112233447C00")
	ac, err := cardsim.ARQC(key, 0x0011, data)
	if err != nil {
		t.Fatal(err)
	}
	ac2, _ := cardsim.ARQC(key, 0x0012, data)
	if len(ac) != 8 || bytes.Equal(ac, ac2) {
		t.Fatalf("ARQC %X / %X", ac, ac2)
	}
	if got := hex.EncodeToString(ac); got != knownARQC {
		t.Fatalf("ARQC %s, want %s", got, knownARQC)
	}
	if _, err := cardsim.ARQC(key[:8], 1, data); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestProcessEdgeCases(t *testing.T) {
	p, err := cardsim.LoadProfile("../../../testdata/cards/debit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := cardsim.New(p)
	for _, tc := range []struct{ cmd, sw string }{
		{"00", "6700"},
		{"00B2010C00", "6985"},       // record before GPO
		{"80A8000002830000", "6985"}, // GPO before SELECT
		{"00C0000010", "6985"},       // nothing to GET RESPONSE
		{"00A4040005A00000099900", "6A82"},
		{"FFA40400", "6E00"},
		{"00EE0000", "6D00"},
		{"00A4040003AABB", "6700"}, // Lc beyond the data
	} {
		cmd, _ := hex.DecodeString(tc.cmd)
		resp, act := c.Process(cmd)
		if act != cardsim.Answer || strings.ToUpper(hex.EncodeToString(resp[len(resp)-2:])) != tc.sw {
			t.Errorf("%s: % X %v, want %s", tc.cmd, resp, act, tc.sw)
		}
	}
}

// TestPlugSpeaksVPCD plays vpcd's side of the protocol on a loopback listener.
func TestPlugSpeaksVPCD(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p, _ := cardsim.LoadProfile("../../../testdata/cards/debit.yaml")
	card, _ := cardsim.New(p)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cardsim.Plug(ctx, ln.Addr().String(), card, nil) }()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(b []byte) {
		f := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
		if _, err := conn.Write(append(f, b...)); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() []byte {
		h := make([]byte, 2)
		if _, err := io.ReadFull(conn, h); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, binary.BigEndian.Uint16(h))
		if _, err := io.ReadFull(conn, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	send([]byte{0x01}) // power on: no answer
	send([]byte{0x04})
	if got := recv(); !bytes.Equal(got, card.ATR()) {
		t.Fatalf("ATR % X", got)
	}
	send([]byte("\x00\xA4\x04\x00\x0E1PAY.SYS.DDF01\x00"))
	if got := recv(); len(got) < 3 || got[0] != 0x6F || !bytes.HasSuffix(got, []byte{0x90, 0x00}) {
		t.Fatalf("SELECT PSE: % X", got)
	}
	cancel() // removal
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, make([]byte, 1)); err == nil {
		t.Fatal("connection still open after removal")
	}
}

func TestPlugRemoveFault(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p, _ := cardsim.LoadProfile("../../../testdata/cards/debit.yaml")
	p.Faults = []cardsim.Fault{{At: "select_pse", N: 1, Kind: "remove"}}
	card, _ := cardsim.New(p)
	done := make(chan error, 1)
	go func() { done <- cardsim.Plug(context.Background(), ln.Addr().String(), card, nil) }()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := []byte("\x00\xA4\x04\x00\x0E1PAY.SYS.DDF01\x00")
	conn.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...))
	if err := <-done; !errors.Is(err, cardsim.ErrRemoved) {
		t.Fatalf("%v, want ErrRemoved", err)
	}
}

// knownARQC was computed independently with openssl (des-ede-ecb session keys,
// des-ecb retail MAC), not with this package.
const knownARQC = "4a43490663343187"
