package monitor_test

import (
	"fmt"

	"github.com/posagent/posagent/agent/central/monitor"
)

func ExampleTextLine() {
	fmt.Println(monitor.TextLine("pos/v1/10000001/state",
		[]byte(`{"state":"offline","tid":"10000001","serial":"PX7-0042","reason":"connection-lost","time":"2025-01-02T09:59:58Z"}`)))
	fmt.Println(monitor.TextLine("pos/v1/10000001/status",
		[]byte(`{"seq":14,"tid":"10000001","step":"test-sale","state":"done","attempt":1,"boot":1,`+
			`"sale":{"stan":3,"amount":1,"rc":"00","rrn":"501234000003","auth_code":"A12345","card":"622202*********0128"},"time":"2025-01-02T10:04:31Z"}`)))
	// Output:
	// 10000001 offline reason=connection-lost serial=PX7-0042 time=2025-01-02T09:59:58Z
	// 10000001 status  step=test-sale state=done attempt=1 card=622202*********0128 rc=00 rrn=501234000003 auth=A12345 stan=3 amount=1 seq=14 time=2025-01-02T10:04:31Z
}
