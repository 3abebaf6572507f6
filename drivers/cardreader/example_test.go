package cardreader_test

import (
	"context"
	"fmt"

	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/drivers/cardreader/cardreadertest"
)

// A T=0 card answers 61XX; Exchange fetches the rest with GET RESPONSE.
func ExampleExchange() {
	card := &cardreadertest.Func{Respond: func(cmd []byte) ([]byte, error) {
		if cmd[1] == 0xC0 { // GET RESPONSE
			return x("6F00 9000"), nil
		}
		return x("6102"), nil
	}}
	r, err := cardreader.Exchange(context.Background(), card,
		cardreader.Command{INS: 0xA4, P1: 0x04, Data: []byte("1PAY.SYS.DDF01"), Ne: 256})
	fmt.Printf("%X %v %v %d transmissions\n", r.Data, r.SW, err, card.Count())
	// Output: 6F00 SW 9000 <nil> 2 transmissions
}
