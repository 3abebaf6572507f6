package broker

import (
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

func TestFleetHook(t *testing.T) {
	h := &fleetHook{users: map[string]string{"10000001": "pw", "monitor": "m"}, acl: true}
	login := func(user, pass string, flag bool) bool {
		return h.OnConnectAuthenticate(&mqtt.Client{}, packets.Packet{Connect: packets.ConnectParams{
			Username: []byte(user), Password: []byte(pass), PasswordFlag: flag}})
	}
	if !login("10000001", "pw", true) || login("10000001", "nope", true) || login("10000001", "", false) || login("stranger", "pw", true) {
		t.Error("password check wrong")
	}
	for _, c := range []struct {
		user, topic string
		write, want bool
	}{
		{"10000001", "pos/v1/10000001/status", true, true},
		{"10000001", "pos/v1/10000001/cmd", false, true},
		{"10000001", "pos/v1/10000001/cmd", true, false}, // only central writes commands
		{"10000001", "pos/v1/10000001/ticket", true, false},
		{"10000001", "pos/v1/10000001/ticket", false, true},
		{"10000001", "pos/v1/10000001/state", true, true},
		{"10000001", "pos/v1/10000001/state", false, true},
		{"10000001", "pos/v1/10000001/events", true, true},
		{"10000001", "pos/v1/10000001/cmd/reply", true, true},
		{"10000001", "pos/v1/10000001/heartbeat", true, true},
		{"10000002", "pos/v1/10000001/heartbeat", true, false}, // nobody beats for another
		{"10000001", "pos/v1/10000001/other", true, false},
		{"10000001", "pos/v1/10000001/#", false, false},
		{"10000001", "pos/v1/10000002/status", true, false},
		{"10000001", "pos/v1/+/cmd", false, false}, // a wildcard is not "own"
		{"10000001", "pos/v1/#", false, false},
		{"10000001", "pos/v1/100000011/status", true, false}, // prefix of another TID
		{"monitor", "pos/v1/#", false, true},
		{"monitor", "pos/v1/10000001/cmd", true, false},
		{"central", "pos/v1/10000001/ticket", true, true},
		{"", "pos/v1//x", true, false},
	} {
		cl := &mqtt.Client{}
		cl.Properties.Username = []byte(c.user)
		if got := h.OnACLCheck(cl, c.topic, c.write); got != c.want {
			t.Errorf("%s %s write=%v: %v, want %v", c.user, c.topic, c.write, got, c.want)
		}
	}
}
