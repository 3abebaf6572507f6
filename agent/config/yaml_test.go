package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// The old ticket section is not silently ignored: its error says what
// replaced it.
func TestTicketSectionReplaced(t *testing.T) {
	_, err := Parse([]byte(readExample(t) + "ticket:\n  public_key_file: /etc/posagent/central.pub\n"))
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "ticket" || !strings.Contains(ce.Msg, "central.keys") {
		t.Errorf("ticket section: %v", err)
	}
}

func TestScalarsKeepTheirText(t *testing.T) {
	// Unquoted, YAML would resolve these to numbers (and 00000001 to octal);
	// the config keeps the text as written.
	c, err := Parse([]byte(edit(t, readExample(t),
		"terminal.tid", "00000001",
		"test_sale.amount", "12.50",
		"binding.accepted_bins", "[62, 0622]",
	)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Terminal.TID != "00000001" || c.TestSale.Minor != 1250 || !slices.Equal(c.Binding.AcceptedBINs, []string{"62", "0622"}) {
		t.Errorf("got tid %q minor %d bins %v", c.Terminal.TID, c.TestSale.Minor, c.Binding.AcceptedBINs)
	}
}

func TestUnknownKeyNamesKeyAndLine(t *testing.T) {
	src := "terminal:\n  mid: \"898310048990001\"\n  colour: red\n"
	_, err := Parse([]byte(src))
	if err == nil || err.Error() != "config: line 3: terminal.colour: unknown key" {
		t.Errorf("err = %v", err)
	}
}

func TestDuplicateKey(t *testing.T) {
	src := "terminal:\n  tid: \"10000001\"\n  tid: \"10000002\"\n"
	_, err := Parse([]byte(src))
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "terminal.tid" || ce.Line != 3 || !strings.Contains(ce.Msg, "line 2") {
		t.Errorf("err = %#v", err)
	}
}

func TestSyntaxError(t *testing.T) {
	for _, src := range []string{
		"terminal:\n  mid: 1\n tid: 2\n",
		"terminal:\n  mid: \"1\n",
		"mqtt:\n  password: " + secretPassword + ": x\n",
		"mqtt:\n  password: \"" + secretPassword + "\n",
		"mqtt:\n  password: [" + secretPassword + "\n",
	} {
		_, err := Parse([]byte(src))
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("Parse(%q) = %v, want *Error", src, err)
			continue
		}
		if ce.Line == 0 || !strings.HasPrefix(err.Error(), "config: line ") {
			t.Errorf("Parse(%q) = %v, want a line number", src, err)
		}
		if strings.Contains(err.Error(), secretPassword) {
			t.Errorf("syntax error echoes the password: %v", err)
		}
	}
}

// TestOldAccountHashNamesReplacement: a config of an earlier version, with
// the unkeyed hash, is refused with what replaces it.
func TestOldAccountHashNamesReplacement(t *testing.T) {
	src := edit(t, readExample(t), "merchant.account_check", "<absent>", "merchant.account_hash", demoHash, "merchant.account_salt", demoSalt)
	_, err := Parse([]byte(src))
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "merchant.account_hash" || !strings.Contains(ce.Msg, "account_check") || ce.Line == 0 {
		t.Fatalf("Parse = %v, want merchant.account_hash naming account_check", err)
	}
}
