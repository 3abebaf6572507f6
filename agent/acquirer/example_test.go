package acquirer_test

import (
	"encoding/json"
	"fmt"

	"github.com/posagent/posagent/agent/acquirer"
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
