package acquirer_test

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/provisioning/pan"
)

// Describe masks card data by default: a message can go to a log or a
// support ticket as it is.
func ExampleDescribe() {
	m := acquirer.NewMessage("0200")
	_ = acquirer.Set(m, 2, "6222021234567890123")
	_ = acquirer.Set(m, 4, "000000000100")
	_ = acquirer.Set(m, 35, "6222021234567890123=2812201")
	body, _ := acquirer.Pack(m)

	got, _ := acquirer.Unpack(body)
	d, _ := acquirer.Describe(got, false)
	j, _ := json.Marshal(d)
	fmt.Println(string(j))
	// Output: {"mti":"0200","fields":{"2":"622202*********0123","35":"[masked 27]","4":"000000000100"}}
}

// A key prints as its check value, never as its bytes.
func ExampleKey() {
	k, _ := acquirer.ParseKey("0123456789ABCDEFFEDCBA9876543210")
	fmt.Println(k)
	// Output: key(kcv=08D7B4FB)
}

// The flow keeps the PAN of an unanswered sale only sealed in its
// checkpoint; the client that sealed it (or one restarted on the same key
// store) opens it for the reversal's field 2 — with the same associated
// data, which names the message the PAN belongs to.
func ExampleClient_SealPAN() {
	tmk, _ := acquirer.ParseKey("0123456789ABCDEFFEDCBA9876543210")
	ks := &acquirer.MemKeyStore{}
	_ = ks.SaveKeys(acquirer.Keys{TMK: tmk})
	c, _ := acquirer.NewClient(acquirer.Config{Addr: "host:5000"}, ks)

	ad := []byte("10000001|000001|000002|sale")
	sealed, _ := c.SealPAN(pan.MustParse("6222021234567890128"), ad)
	fmt.Println("digits in the sealed bytes:", bytes.Contains(sealed, []byte("6222021234567890128")))
	p, _ := c.OpenPAN(sealed, ad)
	fmt.Println("opened:", p)
	_, err := c.OpenPAN(sealed, []byte("10000001|000001|000003|sale"))
	fmt.Println("for another message:", err)
	// Output:
	// digits in the sealed bytes: false
	// opened: 622202*********0128
	// for another message: acquirer: sealed PAN does not open
}
