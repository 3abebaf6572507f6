package swipe_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/posagent/posagent/provisioning"
	"strings"
	"time"

	"github.com/posagent/posagent/agent/card/swipe"
	"github.com/posagent/posagent/drivers/magstripe"
	"github.com/posagent/posagent/provisioning/pan"
)

func Example() {
	// In the agent the line is a serialport.Port on the reader's device;
	// here it is two swipes of the same chip card as a MagTek reader sends them.
	swipes := strings.Repeat(string(magstripe.MagTek.Encode('0',
		"%B6217900000000000120^ZHANG/SAN^30122200000000000000?",
		";6217900000000000120=30122200000000000?")), 2)
	src := swipe.New(strings.NewReader(swipes), swipe.Config{Framing: magstripe.MagTek,
		Now: func() time.Time { return time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC) }})

	_, err := src.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "test sale"})
	fmt.Println(errors.Is(err, swipe.ErrInsertChip))

	src.MarkChipFailed(pan.PAN{}) // the EMV read gave up on the chip
	card, err := src.ReadCard(context.Background(), provisioning.CardRequest{Purpose: "test sale"})
	fmt.Println(card.PAN, card.Name, card.Expiry, card.Entry, card.Track2, err)
	// Output:
	// true
	// 621790*********0120 ZHANG/SAN 3012 fallback [track data] <nil>
}
