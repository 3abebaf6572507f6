package inproc

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/posagent/posagent/agent/receipt"
	"github.com/posagent/posagent/drivers/printer"
	"github.com/posagent/posagent/provisioning"
)

// pictures records the pages it is asked to draw; drawing fails for paths
// containing fail.
type pictures struct {
	paths []string
	pages []printer.Page
	fail  string
}

func (p *pictures) WritePage(path string, page printer.Page) error {
	if p.fail != "" && strings.Contains(path, p.fail) {
		return errors.New("no ink")
	}
	p.paths, p.pages = append(p.paths, path), append(p.pages, page)
	return nil
}

// TestPrinterTextAndPicturesFromOnePage: the text copy and the picture of
// each copy come from the same styled page, the one the ESC/POS driver is
// sent for it; a picture that cannot be drawn is said and the slip printed.
func TestPrinterTextAndPicturesFromOnePage(t *testing.T) {
	var out bytes.Buffer
	dir := t.TempDir()
	pics := &pictures{fail: "cardholder"}
	p := &Printer{Out: &out, Dir: dir, Width: 32, Pictures: pics}
	r := provisioning.Receipt{
		Merchant: provisioning.Merchant{Name: "上海示例便利店"}, Terminal: term,
		Txn:  provisioning.TxnRecord{STAN: 2, Batch: "000001", Amount: 1, RRN: "331009000002", AuthCode: "015838", Time: clock{}.Now(), Masked: "622202*********0128"},
		Kind: "sale",
	}
	if err := p.PrintReceipt(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	merchant := receipt.Page(receipt.Copies(r)[0], 32)
	want := filepath.Join(dir, "sale-000002-merchant.png")
	if !reflect.DeepEqual(pics.paths, []string{want}) || !reflect.DeepEqual(pics.pages, []printer.Page{merchant}) {
		t.Fatalf("pictures of %q: %+v", pics.paths, pics.pages)
	}
	b, err := os.ReadFile(filepath.Join(dir, "sale-000002-merchant.txt"))
	if err != nil || string(b) != merchant.Text() {
		t.Errorf("text copy %q, %v; want the page's text", b, err)
	}
	if !strings.Contains(out.String(), "slip| picture: "+want+"\n") || !strings.Contains(out.String(), "slip| no picture: no ink\n") {
		t.Errorf("out:\n%s", out.String())
	}
	if p.Printed() != 2 {
		t.Errorf("printed %d copies", p.Printed())
	}
}
