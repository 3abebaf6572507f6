// Package rig sets up a terminal's real device stack around the real
// posagent binary, for whole-process campaigns (agent/testkit/crashtest,
// agent/testkit/perfbench): a virtual UnionPay chip card in vpcd's first slot read
// through the machine's pcscd, an ESC/POS printer emulator behind a pty, the
// acquirer host simulator over TCP with the test cards' issuer keys (so the
// sale's ARQC is verified), a mosquitto broker, and a monitor subscribed to
// the terminal's topics before the agent starts.
//
// Everything it starts is owned by one test and stopped by its cleanup.
// Network is loopback only.
package rig

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/agent"
	"github.com/posagent/posagent/agent/acquirer"
	"github.com/posagent/posagent/agent/config/configtest"
	"github.com/posagent/posagent/agent/sim/cardsim"
	"github.com/posagent/posagent/agent/sim/devsim"
	"github.com/posagent/posagent/agent/sim/hostsim"
	"github.com/posagent/posagent/agent/sim/ledger"
	"github.com/posagent/posagent/agent/testkit/bench"
	"github.com/posagent/posagent/drivers/cardreader"
	"github.com/posagent/posagent/drivers/cardreader/pcsc"
)

// Test identity and secrets: what must never appear outside the key store.
const (
	TMK      = "0123456789ABCDEFFEDCBA9876543210"
	DebitPAN = "6222021234567890128" // testdata/cards/debit.yaml
	TID      = "10000001"            // testdata/posagent.example.yaml
	Reader   = "Virtual PCD 00 00"
	// ContactlessReader is vpcd's second slot, which a contactless test
	// names in devices.pcsc_contactless_reader: a card plugged there is
	// tapped.
	ContactlessReader = "Virtual PCD 00 01"
)

// Root is the module root: the directory holding go.mod above the working
// directory (go test runs in the package's directory).
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("rig: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Build compiles ./cmd/posagent (cgo on, as on the terminal, so the PC/SC
// backend is linked) into a temp dir and returns the binary's path.
func Build(t testing.TB) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "posagent")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/posagent")
	cmd.Dir = Root(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build posagent: %v\n%s", err, b)
	}
	return out
}

// PlugCard inserts the cardsim profile (testdata/cards/NAME.yaml) into vpcd
// slot 0 for the rest of the test. The caller must hold the PC/SC lock
// (bench.NeedPCSC): the cleanup waits until pcscd has seen the card go,
// so the next holder of the lock does not read this card.
func PlugCard(t testing.TB, profile string) {
	t.Helper()
	t.Cleanup(InsertCard(t, profile))
}

// PlugCardHook is PlugCard with the card's step hook set (cardsim's
// OnStep; nil for none): hook sees each command's step as the card answers
// it. It returns the card, whose Trace and Steps say what the terminal
// sent it.
func PlugCardHook(t testing.TB, profile string, hook func(step string)) *cardsim.Card {
	t.Helper()
	card, remove := insertCard(t, profile, hook)
	t.Cleanup(remove)
	return card
}

// InsertCard is PlugCard for a card that leaves before the test ends: it
// returns once pcscd reports the card, and the function it returns takes the
// card out and waits until pcscd has seen it go (calling it again does
// nothing). The caller must hold the PC/SC lock and remove the card before
// the test ends.
func InsertCard(t testing.TB, profile string) (remove func()) {
	t.Helper()
	_, remove = insertCard(t, profile, nil)
	return remove
}

// InsertCardSim is InsertCard returning the virtual card too.
func InsertCardSim(t testing.TB, profile string) (card *cardsim.Card, remove func()) {
	t.Helper()
	return insertCard(t, profile, nil)
}

// TapCard plugs the cardsim profile into vpcd's second slot, the
// contactless reader (ContactlessReader), for the rest of the test.
func TapCard(t testing.TB, profile string) *cardsim.Card {
	t.Helper()
	card, remove := insertCardAt(t, profile, nil, 1)
	t.Cleanup(remove)
	return card
}

func insertCard(t testing.TB, profile string, hook func(step string)) (_ *cardsim.Card, remove func()) {
	t.Helper()
	return insertCardAt(t, profile, hook, 0)
}

func insertCardAt(t testing.TB, profile string, hook func(step string), slot int) (_ *cardsim.Card, remove func()) {
	t.Helper()
	card, err := cardsim.Open(filepath.Join(Root(t), "testdata", "cards", profile+".yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		card.OnStep(hook)
	}
	ctx, cancel := context.WithCancel(context.Background())
	plugged := make(chan struct{})
	done := make(chan error, 1)
	reader := []string{Reader, ContactlessReader}[slot]
	go func() { done <- cardsim.Plug(ctx, cardsim.VPCDAddr(slot), card, func() { close(plugged) }) }()
	var once sync.Once
	remove = func() {
		once.Do(func() {
			cancel()
			<-done
			svc := pcsc.New()
			defer svc.Close()
			wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer wcancel()
			if err := cardreader.WaitPresent(wctx, svc, reader, false); err != nil {
				t.Errorf("card never left the slot: %v", err)
			}
		})
	}
	select {
	case <-plugged:
	case err := <-done:
		cancel()
		t.Fatalf("plug card into vpcd: %v", err)
	case <-time.After(10 * time.Second):
		remove()
		t.Fatal("vpcd never took the card")
	}
	// pcscd polls vpcd about every 400 ms: wait until it reports the card,
	// or the agent's first read could race the insertion.
	svc := pcsc.New()
	defer svc.Close()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := cardreader.WaitPresent(wctx, svc, reader, true); err != nil {
		remove()
		t.Fatalf("pcscd never saw the card: %v", err)
	}
	return card, remove
}

// Options select what a Rig adds to the devices.
type Options struct {
	// MQTT starts a mosquitto and a monitor subscribed to pos/v1/{tid}/#.
	MQTT bool
	// Faults are injected into the host simulator's answers (e.g. a delay
	// per exchange, to simulate a slow acquirer link).
	Faults map[string]hostsim.Fault
	// NoCard leaves the config on the simulated card reader (no PC/SC).
	NoCard bool
	// PrinterBaud makes the printer's line as slow as a real UART (the
	// config says 9600); 0 leaves the pty's unlimited speed.
	PrinterBaud int
	// Codes is the host's 60.3 code table (zero: hostsim's default) and
	// Profile the terminal's acquirer profile (host.profile; "" the
	// config's default): a second acquirer is both.
	Codes   hostsim.CodeTable
	Profile string
	// Demands are the host's processing requirements (the answer header's
	// digit), e.g. a re-sign-on asked for in the sale's answer.
	Demands []hostsim.Demand
	// OnAnswer is the host's hook for every message kind it answers.
	OnAnswer func(kind string)
	// OnRequest is the host's hook for every request it takes (hostsim's
	// Config.OnRequest).
	OnRequest func(kind string, field func(id int) string)
	// PINs are the cardholders' PINs by PAN, which the host checks an
	// online PIN against.
	PINs map[string]string
	// Netting is how the host counts a voided sale at settlement
	// (hostsim.NettingNet against the terminal's gross totals: unbalanced).
	Netting string
	// AIDs are the IC parameters the host downloads (nil: hostsim's
	// defaults), e.g. action codes of another acquirer.
	AIDs []hostsim.AID
}

// Rig is one fresh install: a new state dir with the TMK injected, a new
// host ledger, a printer and a config pointing at them.
type Rig struct {
	Dir, State, Config, Ledger, Logs string
	Host                             *hostsim.Server
	Printer                          *devsim.Printer
	Broker                           *bench.Mosquitto
	Monitor                          *Monitor
	// HostAddr is where the host simulator listens: the config points the
	// agent there (a campaign may put a proxy in between).
	HostAddr string
}

var (
	cardsOnce sync.Once
	cardKeys  map[string]hostsim.CardKey
	cardsErr  error
)

// New builds a fresh install in a temp dir.
func New(t testing.TB, o Options) *Rig {
	t.Helper()
	root := Root(t)
	r := &Rig{Dir: t.TempDir()}
	r.State = filepath.Join(r.Dir, "state")
	r.Logs = filepath.Join(r.Dir, "logs")
	if err := os.MkdirAll(r.Logs, 0o700); err != nil {
		t.Fatal(err)
	}

	tmk, err := acquirer.ParseKey(TMK)
	if err != nil {
		t.Fatal(err)
	}
	r.Ledger = filepath.Join(r.Dir, "host-ledger.jsonl")
	l, err := ledger.Open(r.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	// The issuer keys of the test cards: the host verifies the ARQC of the
	// real chip read. Loaded once per process: they never change.
	cardsOnce.Do(func() { cardKeys, cardsErr = hostsim.LoadCards(filepath.Join(root, "testdata", "cards")) })
	if cardsErr != nil {
		t.Fatal(cardsErr)
	}
	hostLog, err := os.Create(filepath.Join(r.Logs, "hostsim.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hostLog.Close() })
	r.Host, err = hostsim.New(hostsim.Config{TMK: tmk, Ledger: l, Cards: cardKeys, Codes: o.Codes, Demands: o.Demands, OnAnswer: o.OnAnswer, OnRequest: o.OnRequest,
		PINs: o.PINs, Netting: o.Netting, AIDs: o.AIDs, Log: slog.New(slog.NewTextHandler(hostLog, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for kind, f := range o.Faults {
		r.Host.Inject(kind, f)
	}
	addr, err := r.Host.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.HostAddr = addr.String()
	t.Cleanup(func() { r.Host.Close() })

	r.Printer, err = devsim.NewPrinter(filepath.Join(r.Dir, "ttyPRN"), filepath.Join(r.Dir, "slips"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Printer.Close() })
	r.Printer.SetBaud(o.PrinterBaud)

	edits := [][2]string{
		{"  address: sim ", "  address: \"" + addr.String() + "\" "},
		{"  printer: sim ", "  printer: serial "},
		{"    device: \"\"             # e.g. /dev/ttyS1", "    device: \"" + r.Printer.Path() + "\" # e.g. /dev/ttyS1"},
		{"state_dir: /var/lib/posagent", "state_dir: " + r.State},
		// The rig's keypad is a key script (posagent run --keys) that
		// confirms the card by itself: allowed with a real host on a test
		// bench only, which this is.
		{"  scripted_keys_with_real_host: false", "  scripted_keys_with_real_host: true"},
	}
	if !o.NoCard {
		edits = append(edits,
			[2]string{"  card_reader: sim ", "  card_reader: pcsc "},
			[2]string{`  pcsc_reader: ""`, `  pcsc_reader: "` + Reader + `"`})
	}
	if o.Profile != "" {
		edits = append(edits, [2]string{"  profile: common ", "  profile: " + o.Profile + " "})
	}
	if o.MQTT {
		r.Broker = bench.StartMosquitto(t)
		edits = append(edits, [2]string{`  url: ""  `, `  url: "` + r.Broker.URL + `"`})
		r.Monitor = StartMonitor(t, r.Broker.Port, TID, filepath.Join(r.Logs, "monitor.log"))
	}
	r.Config = filepath.Join(r.Dir, "posagent.yaml")
	if err := configtest.WriteEdited(filepath.Join(root, "testdata", "posagent.example.yaml"), r.Config, edits); err != nil {
		t.Fatal(err)
	}

	// The key-injection step (posctl keys inject) done directly.
	if err := os.MkdirAll(r.State, 0o700); err != nil {
		t.Fatal(err)
	}
	ks := &acquirer.FileKeyStore{Path: filepath.Join(r.State, agent.KeyFile)}
	if err := ks.SaveKeys(acquirer.Keys{TMK: tmk}); err != nil {
		t.Fatal(err)
	}
	return r
}

// Monitor is an independent subscriber (mosquitto_sub, QoS 1) to every
// topic of one terminal, started before the agent, as central monitoring
// would be watching.
type Monitor struct {
	mu   sync.Mutex
	msgs []Message
	cond chan struct{} // closed and replaced on every message
	cmd  *exec.Cmd
	done chan struct{}
	port int
	tid  string
}

// Message is one delivery the monitor received.
type Message struct {
	Topic   string
	Payload string
	At      time.Time
}

// StartMonitor subscribes to pos/v1/{tid}/# on the broker at 127.0.0.1:port
// and returns once the broker acknowledged the subscription. Every line
// mosquitto_sub prints is also kept in logPath.
func StartMonitor(t testing.TB, port int, tid, logPath string) *Monitor {
	t.Helper()
	bin := bench.Need(t, "mosquitto_sub")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// -d prints the SUBACK (readiness) and one debug line per PUBLISH before
	// the "topic payload" line of -v; -q 1 asks for QoS 1 delivery.
	// mosquitto_sub block-buffers stdout into a pipe: stdbuf makes it line
	// buffered, or the SUBACK and the messages would arrive in 4 KiB lumps.
	stdbuf := bench.Need(t, "stdbuf")
	cmd := exec.Command(stdbuf, "-oL", bin, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-q", "1", "-d", "-v",
		"-i", "crash-monitor-"+strconv.Itoa(os.Getpid()), "-t", "pos/v1/"+tid+"/#")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &Monitor{cmd: cmd, done: make(chan struct{}), cond: make(chan struct{}), port: port, tid: tid}
	subacked := make(chan struct{})
	go func() {
		defer close(m.done)
		defer log.Close()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		acked := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, line)
			if !acked && strings.Contains(line, "received SUBACK") {
				acked = true
				close(subacked)
			}
			if topic, payload, ok := strings.Cut(line, " "); ok && strings.HasPrefix(topic, "pos/v1/") {
				m.mu.Lock()
				m.msgs = append(m.msgs, Message{Topic: topic, Payload: payload, At: time.Now()})
				close(m.cond)
				m.cond = make(chan struct{})
				m.mu.Unlock()
			}
		}
	}()
	t.Cleanup(m.Stop)
	select {
	case <-subacked:
	case <-m.done:
		t.Fatalf("mosquitto_sub exited before subscribing (see %s)", logPath)
	case <-time.After(10 * time.Second):
		t.Fatal("mosquitto_sub: no SUBACK within 10 s")
	}
	return m
}

// Messages returns what the monitor received so far.
func (m *Monitor) Messages() []Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Message(nil), m.msgs...)
}

// WaitFor blocks until a message satisfies ok or ctx ends.
func (m *Monitor) WaitFor(ctx context.Context, ok func(Message) bool) (Message, error) {
	seen := 0
	for {
		m.mu.Lock()
		msgs, cond := m.msgs[seen:], m.cond
		seen = len(m.msgs)
		m.mu.Unlock()
		for _, msg := range msgs {
			if ok(msg) {
				return msg, nil
			}
		}
		select {
		case <-cond:
		case <-ctx.Done():
			return Message{}, errors.New("rig: monitor: awaited message never came")
		}
	}
}

// Sync publishes a marker on the terminal's tree (QoS 1, from its own
// connection) and waits until the monitor receives it. mosquitto hands a
// message to its subscribers before it acknowledges it, so once the marker
// is back, everything an agent got acknowledged before Sync was called has
// reached the monitor too.
func (m *Monitor) Sync(ctx context.Context) error {
	marker := fmt.Sprintf("sync-%d", time.Now().UnixNano())
	topic := "pos/v1/" + m.tid + "/rig-sync"
	out, err := exec.CommandContext(ctx, "mosquitto_pub", "-h", "127.0.0.1", "-p", strconv.Itoa(m.port),
		"-q", "1", "-t", topic, "-m", marker).CombinedOutput()
	if err != nil {
		return fmt.Errorf("rig: mosquitto_pub: %v: %s", err, out)
	}
	_, err = m.WaitFor(ctx, func(msg Message) bool { return msg.Topic == topic && msg.Payload == marker })
	return err
}

// Stop ends the subscriber and waits for it.
func (m *Monitor) Stop() {
	if m.cmd.Process != nil {
		m.cmd.Process.Kill()
	}
	<-m.done
	m.cmd.Wait()
}

// Agent is one posagent process of a rig: its stdout and stderr are kept in
// the rig's log dir (the campaign greps them for secrets).
type Agent struct {
	Cmd     *exec.Cmd
	Started time.Time
	Out     string // path of the stdout log
	// Paused receives the pause point's name once "PAUSED at NAME" is logged.
	Paused chan string
	// Done is closed once the process was waited for; State is then set.
	Done  chan struct{}
	State *os.ProcessState
}

// StartAgent runs `posagent run --config r.Config` plus extra arguments;
// name names its log files. The process is killed at the end of the test
// if it is still running.
func (r *Rig) StartAgent(t testing.TB, bin, name string, extra ...string) *Agent {
	t.Helper()
	a := &Agent{Out: filepath.Join(r.Logs, name+".out"), Paused: make(chan string, 1), Done: make(chan struct{})}
	stdout, err := os.Create(a.Out)
	if err != nil {
		t.Fatal(err)
	}
	stderrLog, err := os.Create(filepath.Join(r.Logs, name+".err"))
	if err != nil {
		t.Fatal(err)
	}
	a.Cmd = exec.Command(bin, append([]string{"run", "--config", r.Config}, extra...)...)
	a.Cmd.Stdout = stdout
	pipe, err := a.Cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	a.Started = time.Now()
	if err := a.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			fmt.Fprintln(stderrLog, sc.Text())
			if p, ok := strings.CutPrefix(sc.Text(), "PAUSED at "); ok {
				select {
				case a.Paused <- p:
				default:
				}
			}
		}
		// The pipe is at EOF: the process has exited (Wait must come after
		// the last read, as exec documents).
		a.Cmd.Wait()
		a.State = a.Cmd.ProcessState
		stdout.Close()
		stderrLog.Close()
		close(a.Done)
	}()
	t.Cleanup(func() {
		select {
		case <-a.Done:
		default:
			a.Cmd.Process.Kill()
			<-a.Done
		}
	})
	return a
}

// Kill SIGKILLs the agent (a power cut) and waits for it; it reports
// whether the kill is what ended it (false: it had already exited).
func (a *Agent) Kill() bool {
	select {
	case <-a.Done:
		return false
	default:
	}
	a.Cmd.Process.Signal(syscall.SIGKILL)
	<-a.Done
	ws, ok := a.State.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// Stdout is what the agent printed so far.
func (a *Agent) Stdout() string {
	b, _ := os.ReadFile(a.Out)
	return string(b)
}

// Stderr is the agent's log so far (masked data only, as every log is): the
// causes behind a failure its screen names.
func (a *Agent) Stderr() string {
	b, _ := os.ReadFile(strings.TrimSuffix(a.Out, ".out") + ".err")
	return string(b)
}
