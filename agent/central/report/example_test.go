package report_test

import (
	"fmt"

	"github.com/posagent/posagent/agent/central/report"
	"github.com/posagent/posagent/provisioning"
)

func ExampleSanitize() {
	// A bug upstream put the full number into the status: it leaves masked.
	s, masked := report.Sanitize(provisioning.Status{
		Card:    "6222021234567890128",
		Message: "merchant 898310048160001 bound card 6222021234567890128",
	})
	fmt.Println(masked)
	fmt.Println(s.Card)
	fmt.Println(s.Message)
	// Output:
	// true
	// 622202*********0128
	// merchant 898310048160001 bound card 622202*********0128
}
