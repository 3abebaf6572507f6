package mqtt

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Rand is the randomness of the connect jitter and the reconnect backoff:
// Int64N returns a number in [0, n). *rand.Rand of math/rand/v2 is one.
type Rand interface {
	Int64N(n int64) int64
}

// Clock is the time the connection loop and the heartbeat run on.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// globalRand is math/rand/v2's global source: seeded at random per process,
// so terminals of one fleet draw different waits, and safe for concurrent use.
type globalRand struct{}

func (globalRand) Int64N(n int64) int64 { return rand.Int64N(n) }

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// StartIndex is the broker a terminal tries first, of n: FNV-1a (32 bits)
// of the TID's bytes, modulo n. It is deterministic, so a terminal always
// starts on the same node, and it spreads a fleet's consecutive TIDs evenly
// over the nodes (docs/mqtt.md, "Brokers and failover"). 0 when n < 2.
func StartIndex(tid string, n int) int {
	if n < 2 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(tid))
	return int(h.Sum32() % uint32(n))
}

// brokerURLs checks the broker list (one and many are exclusive) and reports
// whether it is TLS. Every URL is scheme://host:port without credentials;
// the schemes are all plain or all TLS.
func brokerURLs(one string, many []string) (urls []string, tls bool, err error) {
	switch {
	case one != "" && len(many) > 0:
		return nil, false, errors.New("mqtt: set URL or URLs, not both")
	case one != "":
		urls = []string{one}
	case len(many) > 0:
		urls = append([]string(nil), many...)
	default:
		return nil, false, errors.New("mqtt: a broker URL is required")
	}
	seen := map[string]bool{}
	for i, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, false, fmt.Errorf("mqtt: broker URL %q: want scheme://host:port", redact(raw))
		}
		if u.User != nil {
			// paho would use them silently; they would then sit in configs and logs.
			return nil, false, errors.New("mqtt: put credentials in Username/Password, not in the URL")
		}
		var isTLS bool
		switch u.Scheme {
		case "tcp", "mqtt":
		case "ssl", "tls", "mqtts":
			isTLS = true
		default:
			return nil, false, fmt.Errorf("mqtt: broker URL scheme %q: want tcp, mqtt, ssl, tls or mqtts", u.Scheme)
		}
		if i > 0 && isTLS != tls {
			// The ticket and command subscriptions are allowed or refused for
			// the whole session: a plain node would carry them in clear.
			return nil, false, fmt.Errorf("mqtt: broker URLs mix plain and TLS schemes (%s): use TLS for all", redact(raw))
		}
		tls = isTLS
		if seen[raw] {
			return nil, false, fmt.Errorf("mqtt: broker URL %s listed twice", redact(raw))
		}
		seen[raw] = true
	}
	return urls, tls, nil
}

// backoff is the wait before a reconnect attempt: "full jitter" of the AWS
// Architecture Blog's "Exponential Backoff And Jitter" (Marc Brooker, 2015),
// sleep = random_between(0, min(max, base·2^attempt)). Full jitter spreads a
// fleet that lost its broker at one instant over the whole window, where
// plain doubling (paho's) brings every terminal back in the same second.
//
// A broker that answers "busy" (below) raises the cap: it doubles with each
// busy answer in a row, up to BusyFactor·max. A fixed cap offers a broker
// fleet/(max/2) attempts a second however overloaded it is, and on RabbitMQ
// every refused attempt costs a client-ID registration: 10,000 terminals
// at a 1-minute cap kept a restarted cluster refusing them for as long as we
// watched, where a 2-minute cap brought them all back (README). An
// unreachable broker costs nothing to try, so there the cap stays max and
// the terminals are back soon after their node is.
type backoff struct {
	base, max time.Duration
	rand      Rand
	attempt   int // attempts in a row since the last stable connection
	busy      int // busy answers in a row
}

// next is the wait before the next attempt, after one the broker answered
// busy or not; it counts the attempt.
func (b *backoff) next(busy bool) time.Duration {
	if busy {
		b.busy++
	} else {
		b.busy = 0
	}
	top := b.max
	for i := 0; i < b.busy && top < BusyFactor*b.max; i++ {
		top *= 2
	}
	top = min(top, BusyFactor*b.max)
	ceil := b.base
	for i := 0; i < b.attempt && ceil < top; i++ {
		ceil *= 2 // stops doubling at top, so it never overflows
	}
	b.attempt++
	return jitter(b.rand, min(ceil, top))
}

// busyAnswer tells whether a failed attempt reached a broker too loaded to
// take it: a CONNACK "server unavailable" (RabbitMQ's answer when its
// client-ID registration times out), or no CONNACK within the connect
// timeout once the TCP connection was up. A refused or timed-out dial is not
// busy: a node that is down or gone looks the same.
func busyAnswer(err error) bool {
	if errors.Is(err, errRefusedUnavailable) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read" && op.Timeout()
}

// reset starts the schedule again, after a connection that held.
func (b *backoff) reset() { b.attempt, b.busy = 0, 0 }

// jitter is a random wait in [0, d].
func jitter(r Rand, d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(r.Int64N(int64(d) + 1))
}

// run is the connection loop: from the TID's start node, round robin over
// the brokers, one connection at a time, each after the backoff's wait
// (the first after the connect jitter). It returns when Close begins.
func (c *Client) run() {
	defer close(c.loopDone)
	bo := backoff{base: ReconnectBase, max: c.opts.ReconnectMax, rand: c.rand}
	idx := c.start
	if !c.sleep(jitter(c.rand, c.opts.ConnectJitter)) {
		return
	}
	for {
		cn, err := c.connect(c.urls[idx])
		busy := false
		switch {
		case cn == nil && err == nil:
			return // closed while connecting
		case err != nil:
			busy = busyAnswer(err)
			c.connectFailed(c.urls[idx], err)
		default:
			since := c.clock.Now()
			select {
			case <-cn.lost:
			case <-c.closed:
				return
			}
			// A connection that held for a keepalive was a working one: the
			// next loss starts the schedule from its first, short step.
			if c.clock.Now().Sub(since) >= c.opts.Keepalive {
				bo.reset()
			}
		}
		idx = (idx + 1) % len(c.urls)
		if !c.sleep(bo.next(busy)) {
			return
		}
	}
}

// sleep waits d, or returns false when Close begins first.
func (c *Client) sleep(d time.Duration) bool {
	select {
	case <-c.clock.After(d):
		return true
	case <-c.closed:
		return false
	}
}

// connect makes one connection attempt to url with a paho client of its
// own, the current connection from now on. It returns the connection once
// it is up, the attempt's error, or (nil, nil) when Close began first.
func (c *Client) connect(url string) (*conn, error) {
	cn := &conn{url: url, lost: make(chan struct{})}
	co := paho.NewClientOptions().
		AddBroker(url).
		SetClientID("posagent-"+c.opts.TID).
		SetUsername(c.opts.Username).
		SetPassword(c.opts.Password).
		SetKeepAlive(c.opts.Keepalive).
		SetConnectTimeout(connectTimeout).
		SetProtocolVersion(ProtocolVersion).
		// A clean session on every connection: the next one may be on
		// another node, which has no session of ours; the subscriptions
		// and the birth are sent again by onConnect.
		SetCleanSession(true).
		// The loop, not paho, decides where and when to connect next.
		SetConnectRetry(false).
		SetAutoReconnect(false).
		SetBinaryWill(StateTopic(c.opts.TID), c.will, 1, true).
		SetOnConnectHandler(func(pc paho.Client) { c.onConnect(cn, pc) }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.log.Warn("mqtt: connection to broker lost; reconnecting", "broker", redact(url), "err", err)
			cn.lostOnce.Do(func() { close(cn.lost) })
		})
	if c.tlsCfg != nil {
		co.SetTLSConfig(c.tlsCfg)
	}
	cn.pc = paho.NewClient(co)
	c.mu.Lock()
	// Current before Connect: paho runs onConnect, which wakes
	// WaitConnected, before the token completes.
	c.cur = cn
	c.mu.Unlock()
	tok := cn.pc.Connect()
	select {
	case <-tok.Done():
	case <-c.closed:
		// Close disconnects cn, the current connection: paho's Disconnect
		// waits for the attempt to end and then closes it cleanly.
		return nil, nil
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return cn, nil
}
