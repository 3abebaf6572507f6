package emv_test

import (
	"context"
	"fmt"

	"github.com/posagent/posagent/agent/card/emv"
	"github.com/posagent/posagent/agent/sim/cardsim"
	"github.com/posagent/posagent/drivers/cardreader/cardreadertest"
)

func ExampleDecodeTLV() {
	objs, err := emv.DecodeTLV(cardreadertest.X("6F0F 8407A0000003330101 A504 50024442"))
	if err != nil {
		fmt.Println(err)
		return
	}
	df, _ := emv.Find(objs, 0x84)
	label, _ := emv.Find(objs, 0x50)
	fmt.Printf("%v %X %q\n", df.Tag, df.Value, label.Value)
	// Output: 84 A0000003330101 "DB"
}

// Read a virtual debit card in-process; the PAN prints masked.
func ExampleRead() {
	p, err := cardsim.LoadProfile("../../../testdata/cards/debit.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	card, _ := cardsim.New(p)
	res, err := emv.Read(context.Background(), card.AsCard("sim"), emv.DefaultTerminal(), emv.Transaction{Amount: 100})
	fmt.Println(res.PAN, res.Expiry, res.Name, res.Type, res.Track2, err)
	// Output: 622202*********0128 3012 ZHANG/SAN debit track2[19 bytes] <nil>
}

// The PAN inside a record is masked in the description.
func ExampleDescribeJSON() {
	out, err := emv.DescribeJSON(cardreadertest.X("7010 5A086222021234567890 5F2403301231"))
	fmt.Println(string(out), err)
	// Output:
	// [
	//   {
	//     "tag": "70",
	//     "name": "Record Template",
	//     "len": 16,
	//     "children": [
	//       {
	//         "tag": "5A",
	//         "name": "Application PAN",
	//         "len": 8,
	//         "value": "622202******7890",
	//         "masked": true
	//       },
	//       {
	//         "tag": "5F24",
	//         "name": "Application Expiration Date",
	//         "len": 3,
	//         "value": "301231"
	//       }
	//     ]
	//   }
	// ] <nil>
}

// The issuer data of a host's answer: 91 and one script run after the
// second GENERATE AC.
func ExampleParseIssuerResponse() {
	r, err := emv.ParseIssuerResponse(cardreadertest.X(
		"910A 1122334455667788 3030" +
			"7212 9F1804 00000001 8609 841E000004 AABBCCDD"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("91 %X\n", r.Auth)
	for _, s := range r.Scripts {
		fmt.Printf("%v id %X: %d command(s), first % X\n", s.Template, s.ID, len(s.Commands), s.Commands[0][:4])
	}
	// Output:
	// 91 11223344556677883030
	// 72 id 00000001: 1 command(s), first 84 1E 00 00
}
