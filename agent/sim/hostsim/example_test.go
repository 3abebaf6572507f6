package hostsim_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/provisioning"
)

// A terminal signs on to the simulator and makes a sale; the host's ledger
// records it with the masked PAN.
func Example() {
	dir, _ := os.MkdirTemp("", "hostsim")
	defer os.RemoveAll(dir)
	tmk, _ := acquirer.ParseKey("0123456789ABCDEFFEDCBA9876543210")

	book, _ := ledger.Open(filepath.Join(dir, "ledger.jsonl"))
	defer book.Close()
	srv, _ := hostsim.New(hostsim.Config{TMK: tmk, Ledger: book, Log: quiet})
	addr, _ := srv.Listen("127.0.0.1:0")
	defer srv.Close()

	keys := &acquirer.MemKeyStore{}
	_ = keys.SaveKeys(acquirer.Keys{TMK: tmk}) // injected at key loading
	c, _ := acquirer.NewClient(acquirer.Config{Addr: addr.String(), Log: quiet}, keys)

	ctx := context.Background()
	on, _ := c.SignOn(ctx, provisioning.SignOnRequest{Terminal: terminal, STAN: 1})
	fmt.Println("sign-on", on.RC, "batch", on.Batch, "keys ok", on.KeysOK)
	sale, _ := c.Sale(ctx, provisioning.SaleRequest{Terminal: terminal, STAN: 2, Batch: on.Batch, Amount: 1, Card: card})
	fmt.Println("sale", sale.RC)
	for _, e := range book.Entries() {
		fmt.Println(e.Event, e.Kind, e.STAN, e.Amount, e.Card)
	}
	// Output:
	// sign-on 00 batch 000001 keys ok true
	// sale 00
	// approved sale 2 1 622202*********0123
}
