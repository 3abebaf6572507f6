package outbox_test

import (
	"fmt"
	"log"
	"os"

	"github.com/posagent/posagent/agent/central/outbox"
)

// The reporter's loop: the flow appends, the publisher peeks, publishes and
// acknowledges; a restart in between loses nothing and repeats no seq.
func Example() {
	dir, err := os.MkdirTemp("", "outbox-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ob, err := outbox.Open(dir, outbox.Options{})
	if err != nil {
		log.Fatal(err)
	}
	for _, step := range []string{"selftest", "network"} {
		// AppendWith lets the payload carry the seq the record gets.
		if _, err := ob.AppendWith("pos/v1/10000001/events", false, func(seq uint64) ([]byte, error) {
			return fmt.Appendf(nil, `{"seq":%d,"step":%q}`, seq, step), nil
		}); err != nil {
			log.Fatal(err)
		}
	}
	recs, _ := ob.Peek(1)
	fmt.Printf("publish %s\n", recs[0].Payload)
	if err := ob.Ack(recs[0].Seq); err != nil { // on PUBACK
		log.Fatal(err)
	}
	ob.Close() // or a power cut

	ob, err = outbox.Open(dir, outbox.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer ob.Close()
	recs, _ = ob.Peek(10)
	for _, r := range recs {
		fmt.Printf("replay  %s\n", r.Payload)
	}
	seq, _ := ob.Append("pos/v1/10000001/events", false, []byte("…"))
	fmt.Println("next seq", seq)
	// Output:
	// publish {"seq":1,"step":"selftest"}
	// replay  {"seq":2,"step":"network"}
	// next seq 3
}
