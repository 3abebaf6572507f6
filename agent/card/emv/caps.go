package emv

// What the terminal is, said once. Terminal capabilities 9F33, terminal
// type 9F35, additional terminal capabilities 9F40 and the contactless
// terminal transaction qualifiers 9F66 are all derived from Capabilities,
// so that what the card is told cannot drift from what the kernel does:
// when offline data authentication lands, its method is switched on here
// and 9F33 byte 3 follows. Bit layouts: EMV 4.3 Book 4 Annex A1 (9F35), A2
// (9F33), A3 (9F40); TTQ: EMV Contactless Book C-3 (qVSDC, which qPBOC
// follows) as openemv/emv-utils src/emv_fields.h lists the bits.

// TerminalCaps lists what the terminal does. Every field is one bit (or,
// for the terminal type, one digit) of a data object the card reads.
type TerminalCaps struct {
	// Card data input (9F33 byte 1).
	ManualKeyEntry, Magstripe, ICContact bool
	// Cardholder verification methods (9F33 byte 2; TTQ byte 1 for the
	// two a contactless reader announces).
	PlaintextPINOffline, EncipheredPINOnline, Signature, EncipheredPINOffline, NoCVM bool
	// Security (9F33 byte 3): offline data authentication methods the
	// kernel performs, and card capture.
	SDA, DDA, CDA, CardCapture bool

	// Terminal type (9F35): who operates it (1 financial institution, 2
	// merchant, 3 cardholder), attended or not, and whether it can go
	// online and approve offline.
	Operator                byte
	Attended                bool
	OnlineCapable, Offline  bool
	ContactlessEMV, FDDA    bool // TTQ: qPBOC (EMV mode) reader; fDDA for offline approvals
	ContactlessContactChip  bool // TTQ byte 1: the reader's terminal also takes contact chips
	ContactlessOnlineCrypto bool // TTQ byte 2: the reader requires an online cryptogram

	// Transaction types (9F40 bytes 1 and 2).
	Cash, Goods, Services, Cashback, Inquiry, Transfer, Payment, Administrative, CashDeposit bool
	// Terminal data input (9F40 byte 3).
	NumericKeys, AlphabeticKeys, CommandKeys, FunctionKeys bool
	// Terminal data output (9F40 byte 4, bits 8-5). No ISO 8859 code table
	// is claimed: the kernel shows the preferred name 9F12 only when it is
	// plain ASCII, which is not support for any code table.
	PrintAttendant, PrintCardholder, DisplayAttendant, DisplayCardholder bool
}

// Capabilities is this terminal as built: a merchant's attended,
// online-only terminal (9F35 21, PROTOCOLS.md §2) reading IC and magnetic
// stripe cards (no manual PAN entry: the flow has none), verifying the
// cardholder by enciphered PIN online, signature or no CVM (cvm.go; no
// offline PIN), authenticating cards offline by SDA, DDA and CDA
// (odastep.go, cda.go), selling
// goods and reading cards for inquiries (9C 00 and 31); a numeric keypad
// with ENTER/CANCEL (drivers/keypad), a printer for both slips
// (agent/receipt) and the installer's display. Its contactless reader
// speaks qPBOC and, online only, requires an online cryptogram for every
// amount; it verifies fDDA (versions 00 and 01) where a caller lifts that
// requirement to examine a card's offline approval (contactless.go).
var Capabilities = TerminalCaps{
	Magstripe: true, ICContact: true,
	EncipheredPINOnline: true, Signature: true, NoCVM: true,
	SDA: true, DDA: true, CDA: true,
	Operator: 2, Attended: true, OnlineCapable: true,
	ContactlessEMV: true, ContactlessContactChip: true, ContactlessOnlineCrypto: true, FDDA: true,
	Goods: true, Inquiry: true,
	NumericKeys: true, CommandKeys: true,
	PrintAttendant: true, PrintCardholder: true, DisplayAttendant: true,
}

func bit(on bool, mask byte) byte {
	if on {
		return mask
	}
	return 0
}

// TerminalCapabilities is 9F33 (Book 4 Annex A2).
func (c TerminalCaps) TerminalCapabilities() []byte {
	return []byte{
		bit(c.ManualKeyEntry, 0x80) | bit(c.Magstripe, 0x40) | bit(c.ICContact, 0x20),
		bit(c.PlaintextPINOffline, 0x80) | bit(c.EncipheredPINOnline, 0x40) | bit(c.Signature, 0x20) |
			bit(c.EncipheredPINOffline, 0x10) | bit(c.NoCVM, 0x08),
		bit(c.SDA, 0x80) | bit(c.DDA, 0x40) | bit(c.CardCapture, 0x20) | bit(c.CDA, 0x08),
	}
}

// TerminalType is 9F35 (Book 4 Annex A1): the operator digit, then the
// environment: 1 online only, 2 offline with online capability, 3 offline
// only, attended; 4, 5, 6 the same unattended. A terminal that can do
// neither is reported as online only, the least it could claim.
func (c TerminalCaps) TerminalType() byte {
	env := byte(1)
	switch {
	case c.OnlineCapable && c.Offline:
		env = 2
	case c.Offline:
		env = 3
	}
	if !c.Attended {
		env += 3
	}
	return c.Operator<<4 | env
}

// AdditionalCapabilities is 9F40 (Book 4 Annex A3).
func (c TerminalCaps) AdditionalCapabilities() []byte {
	return []byte{
		bit(c.Cash, 0x80) | bit(c.Goods, 0x40) | bit(c.Services, 0x20) | bit(c.Cashback, 0x10) |
			bit(c.Inquiry, 0x08) | bit(c.Transfer, 0x04) | bit(c.Payment, 0x02) | bit(c.Administrative, 0x01),
		bit(c.CashDeposit, 0x80),
		bit(c.NumericKeys, 0x80) | bit(c.AlphabeticKeys, 0x40) | bit(c.CommandKeys, 0x20) | bit(c.FunctionKeys, 0x10),
		bit(c.PrintAttendant, 0x80) | bit(c.PrintCardholder, 0x40) | bit(c.DisplayAttendant, 0x20) |
			bit(c.DisplayCardholder, 0x10),
		0x00,
	}
}

// TTQ is 9F66, the contactless terminal transaction qualifiers: byte 1 EMV
// mode (qPBOC) b6, contact chip b5, offline-only reader b4, online PIN b3,
// signature b2; byte 2 online cryptogram required b8, offline PIN b6;
// byte 4 fDDA v1.0 b8.
func (c TerminalCaps) TTQ() []byte {
	return []byte{
		bit(c.ContactlessEMV, 0x20) | bit(c.ContactlessContactChip, 0x10) |
			bit(c.Offline && !c.OnlineCapable, 0x08) | bit(c.EncipheredPINOnline, 0x04) | bit(c.Signature, 0x02),
		bit(c.ContactlessOnlineCrypto, 0x80) | bit(c.PlaintextPINOffline || c.EncipheredPINOffline, 0x20),
		0x00,
		bit(c.FDDA, 0x80),
	}
}

// Terminal type environment digits (9F35 low nibble, Book 4 Annex A1).
func onlineOnlyType(t byte) bool  { e := t & 0x0F; return e == 1 || e == 4 }
func offlineOnlyType(t byte) bool { e := t & 0x0F; return e == 3 || e == 6 }
