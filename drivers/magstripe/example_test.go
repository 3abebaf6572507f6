package magstripe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/posagent/posagent/drivers/magstripe"
)

// A MagTek-style reader's line carrying one chip card swipe and one magstripe
// card swipe. The chip card is refused; the other card's track 2 goes to the
// callback (for field 35) and nowhere else.
func ExampleReader_Swipe() {
	line := bytes.NewReader(append(
		magstripe.MagTek.Encode('0', ";6217900000000000120=30122200000000000?"),
		magstripe.MagTek.Encode('0', "%B6217900000000000120^ZHANG/SAN^30121010000000000000?",
			";6217900000000000120=30121010000000000?")...))
	r := magstripe.NewReader(line, magstripe.Config{
		Framing: magstripe.MagTek,
		Now:     func() time.Time { return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) },
		Sensitive: func(s magstripe.Sensitive) {
			fmt.Println("field 35 gets", len(s.Track2), "bytes")
		},
	})
	_, err := r.Swipe(context.Background(), false)
	fmt.Println(errors.Is(err, magstripe.ErrChipCard), err)
	sw, err := r.Swipe(context.Background(), false)
	fmt.Println(sw.PAN, sw.Name, sw.Expiry, sw.ServiceCode, sw.Field605(), err)
	// Output:
	// true magstripe: chip card: insert the chip card (card 621790*********0120, service code 220)
	// field 35 gets 37 bytes
	// 621790*********0120 ZHANG/SAN 3012 101 0 <nil>
}

func ExampleParseTrack() {
	t, err := magstripe.ParseTrack([]byte(";6217900000000000121=24011010000000000?"),
		magstripe.ParseOptions{Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	fmt.Println(t.PAN, t.Failed)
	fmt.Println(err)
	// Output:
	// 621790*********0121 [luhn expiry]
	// magstripe: track 2 failed: luhn, expiry
}

// What `posctl decode track` prints: the PAN masked, the failed checks named.
func ExampleInspect() {
	in := magstripe.Inspect("6217900000000000120=30122200000000000",
		magstripe.ParseOptions{Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	b, _ := json.Marshal(in)
	fmt.Println(string(b))
	// Output:
	// {"track":2,"pan":"621790*********0120","expiry":"3012","service_code":"220","chip":true,"valid":true,"failed":[]}
}
