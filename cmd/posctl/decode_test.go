package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestDecodeTrack(t *testing.T) {
	const track2 = ";6222021234567890128=30122011234567890?"
	var out, errs bytes.Buffer
	if code := run([]string{"decode", "track", track2}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	var got struct {
		PAN, Expiry, ServiceCode string
		Valid, Chip              bool
	}
	if err := json.Unmarshal(out.Bytes(), &struct {
		PAN         *string `json:"pan"`
		Expiry      *string `json:"expiry"`
		ServiceCode *string `json:"service_code"`
		Valid       *bool   `json:"valid"`
		Chip        *bool   `json:"chip"`
	}{&got.PAN, &got.Expiry, &got.ServiceCode, &got.Valid, &got.Chip}); err != nil {
		t.Fatal(err)
	}
	if got.PAN != "622202*********0128" || got.Expiry != "3012" || got.ServiceCode != "201" || !got.Valid || !got.Chip {
		t.Errorf("decoded %+v\n%s", got, out.String())
	}
	if strings.Contains(out.String(), "6222021234567890128") {
		t.Error("full PAN printed without --reveal")
	}

	out.Reset()
	if code := run([]string{"decode", "track", "--reveal", track2}, &out, &errs); code != 0 || !strings.Contains(out.String(), "6222021234567890128") {
		t.Errorf("--reveal: exit %d\n%s", code, out.String())
	}

	out.Reset()
	errs.Reset()
	if code := run([]string{"decode", "track", ";6222021234567890127=30122011234567890?"}, &out, &errs); code != 1 || !strings.Contains(out.String(), "luhn") {
		t.Errorf("bad Luhn: exit %d\n%s%s", code, out.String(), errs.String())
	}
	for _, args := range [][]string{{"decode"}, {"decode", "iso"}, {"decode", "track"}} {
		if code := run(args, &out, &errs); code != 2 {
			t.Errorf("posctl %v = %d, want 2", args, code)
		}
	}
}

func TestDecodeTLV(t *testing.T) {
	// 70 { 5A PAN, 5F20 name, 5F24 expiry }
	const rec = "701E" + "5A0A6222021234567890128F" + "5F2009" + "5A48414E472F53414E" + "5F2403301231"
	var out, errs bytes.Buffer
	if code := run([]string{"decode", "tlv", rec}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if !json.Valid(out.Bytes()) || !strings.Contains(out.String(), "5F24") || strings.Contains(out.String(), "6222021234567890128") {
		t.Errorf("output:\n%s", out.String())
	}
	for _, bad := range []string{"zz", "5A0A62"} {
		out.Reset()
		errs.Reset()
		code := run([]string{"decode", "tlv", bad}, &out, &errs)
		if code != 1 || strings.Count(strings.TrimSpace(errs.String()), "\n") != 0 || errs.Len() == 0 {
			t.Errorf("decode tlv %q = %d, stderr %q; want exit 1 and one line", bad, code, errs.String())
		}
	}
}
