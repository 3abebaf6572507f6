package mqtt

import (
	"encoding/json"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// heartbeat beats on cn every Heartbeat until cn is lost or Close begins.
// The first beat comes one interval after the birth, which already said
// "online".
func (c *Client) heartbeat(cn *conn) {
	defer c.beating.Done()
	for {
		select {
		case <-c.clock.After(c.opts.Heartbeat):
		case <-cn.lost:
			return
		case <-c.closed:
			return
		}
		c.beat(cn.pc)
	}
}

// beat publishes the next heartbeat at QoS 0, unless Close has begun. QoS 0
// because a beat only matters now: a late one says nothing, and a lost one
// is what silence detection is for.
func (c *Client) beat(pc paho.Client) {
	c.birthMu.Lock()
	defer c.birthMu.Unlock()
	if c.closing.Load() {
		return
	}
	n := c.beats.Add(1)
	b, _ := json.Marshal(Heartbeat{
		TID: c.opts.TID, Session: c.opts.Session, Beat: n,
		IntervalS: intervalSeconds(c.opts.Heartbeat), Time: c.clock.Now().UTC().Truncate(time.Second),
	})
	tok := pc.Publish(HeartbeatTopic(c.opts.TID), 0, false, b)
	go func() {
		if tok.Wait(); tok.Error() != nil {
			c.log.Debug("mqtt: heartbeat not published", "beat", n, "err", tok.Error())
		}
	}()
}

// intervalSeconds is d in whole seconds, rounded up, at least 1.
func intervalSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
