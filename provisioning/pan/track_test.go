package pan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestTrackNeverShown(t *testing.T) {
	const raw = "6222021234567890128=30122011234500000000"
	tr := NewTrack(raw)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("swipe", "track", tr)
	js, err := json.Marshal(struct{ T Track }{tr})
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", tr), "Sprint": fmt.Sprint(tr), "%#v": fmt.Sprintf("%#v", tr),
		"%+v struct": fmt.Sprintf("%+v", struct{ T Track }{tr}), "slog": logged.String(), "json": string(js),
	} {
		if strings.Contains(out, "1234567890") || strings.Contains(out, "3012201") {
			t.Errorf("%s shows track data: %s", name, out)
		}
		if !strings.Contains(out, redacted) {
			t.Errorf("%s = %q, want the redaction marker", name, out)
		}
	}
	if tr.Reveal() != raw || tr.IsZero() || !NewTrack("").IsZero() || NewTrack("").String() != "" {
		t.Fatal("Reveal/IsZero broken")
	}
}
