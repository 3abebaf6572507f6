package hostsim

import (
	"crypto/rsa"
	"crypto/subtle"
	"io"

	"github.com/moov-io/iso8583"

	"github.com/posagent/posagent/agent/acquirer"
)

// The remote TMK download as the host runs it (Config.TMKDownload; the
// terminal's side and the sources are in agent/acquirer/tmk.go and
// docs/acquirer-procedure.md):
//
//   - TMKKey (352): field 62 is the terminal's RSA public key (DF02 modulus,
//     DF04 exponent). The host makes a fresh double-length TMK for the
//     terminal, keeps it pending, and answers with it encrypted under that
//     key (RSAES-PKCS1-v1_5) followed by its 4-byte check value. A second
//     352 before the activation replaces the pending key.
//   - TMKActivate (351): field 62 is the check value of the TMK the
//     terminal took. When it is the pending key's, that key becomes the
//     terminal's TMK for every later sign-on; otherwise the answer is A7
//     (the security processing failed, as the public POSP answers an HSM
//     failure: chinaljp/posp term_sign.c ErrHanding "A7") and nothing
//     changes. A 351 repeated for the TMK already activated is answered 00
//     again: the terminal sends it once more when the first answer was
//     lost, and must not be told its TMK is not the host's. With nothing
//     pending or active under that check value the answer is 25 (no
//     original).
//
// Neither message needs a session, and neither answer carries a MAC.

// tmkFor is the TMK tid's working keys go under: its downloaded one, or the
// configured one.
func (s *Server) tmkFor(tid string) acquirer.Key {
	if k := s.tmks[tid]; k != nil {
		return k
	}
	return s.cfg.TMK
}

func (s *Server) tmkKey(m, resp *iso8583.Message) string {
	if !s.cfg.TMKDownload {
		return "40"
	}
	if !s.knownMID(acquirer.Get(m, 42)) {
		return "03"
	}
	pub, err := acquirer.ParsePublicKeyField(acquirer.GetBytes(m, 62))
	if err != nil {
		return "30" // format error
	}
	tmk := make(acquirer.Key, 16)
	if _, err := io.ReadFull(s.cfg.Rand, tmk); err != nil {
		return "96"
	}
	//lint:ignore SA1019 the terminal expects PKCS #1 v1.5 (agent/acquirer/tmk.go)
	ct, err := rsa.EncryptPKCS1v15(s.cfg.Rand, pub, tmk)
	if err != nil {
		return "96"
	}
	cv, err := acquirer.CheckValue(tmk)
	if err != nil {
		return "96"
	}
	_ = acquirer.SetBytes(resp, 62, append(ct, cv...))
	tid := acquirer.Get(m, 41)
	if old := s.pendingTMKs[tid]; old != nil {
		old.Wipe()
	}
	s.pendingTMKs[tid] = tmk
	return "00"
}

func (s *Server) tmkActivate(m *iso8583.Message) string {
	if !s.cfg.TMKDownload {
		return "40"
	}
	if !s.knownMID(acquirer.Get(m, 42)) {
		return "03"
	}
	tid := acquirer.Get(m, 41)
	got := acquirer.GetBytes(m, 62)
	pending := s.pendingTMKs[tid]
	if pending == nil {
		if active := s.tmks[tid]; active != nil && cvIs(active, got) {
			return "00"
		}
		return "25"
	}
	if !cvIs(pending, got) {
		return "A7"
	}
	delete(s.pendingTMKs, tid)
	if old := s.tmks[tid]; old != nil {
		old.Wipe()
	}
	s.tmks[tid] = pending
	// The old session's keys were under the old TMK.
	delete(s.sessions, tid)
	return "00"
}

// cvIs says whether cv is k's check value.
func cvIs(k acquirer.Key, cv []byte) bool {
	want, err := acquirer.CheckValue(k)
	return err == nil && subtle.ConstantTimeCompare(cv, want) == 1
}
