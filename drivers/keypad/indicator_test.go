package keypad

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/posagent/posagent/drivers/keypad/keypadtest"
	"periph.io/x/conn/v3/gpio"
)

const (
	H  = gpio.High
	L  = gpio.Low
	ms = time.Millisecond
)

func TestIndicatorPatterns(t *testing.T) {
	tests := []struct {
		name      string
		led       bool
		activeLow bool
		play      func(*Indicator, context.Context) error
		outs      []gpio.Level
		waits     []time.Duration
	}{
		{"buzzer click", false, false, (*Indicator).Click,
			[]gpio.Level{H, L}, []time.Duration{15 * ms}},
		{"buzzer success", false, false, (*Indicator).Success,
			[]gpio.Level{H, L, H, L}, []time.Duration{80 * ms, 80 * ms, 80 * ms}},
		{"buzzer failure", false, false, (*Indicator).Failure,
			[]gpio.Level{H, L}, []time.Duration{600 * ms}},
		{"active-low buzzer click", false, true, (*Indicator).Click,
			[]gpio.Level{L, H}, []time.Duration{15 * ms}},
		{"led click", true, false, (*Indicator).Click,
			[]gpio.Level{H, L}, []time.Duration{60 * ms}},
		{"led success", true, false, (*Indicator).Success,
			[]gpio.Level{H, L}, []time.Duration{time.Second}},
		{"led failure", true, false, (*Indicator).Failure,
			[]gpio.Level{H, L, H, L, H, L}, []time.Duration{150 * ms, 150 * ms, 150 * ms, 150 * ms, 150 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pin := keypadtest.NewPin("IND", 0)
			clock := keypadtest.NewClock(t0, period)
			opts := []IndicatorOption{IndicatorClock(clock)}
			if tt.activeLow {
				opts = append(opts, ActiveLow())
			}
			var ind *Indicator
			if tt.led {
				ind = NewLED(pin, opts...).Indicator
			} else {
				ind = NewBuzzer(pin, opts...).Indicator
			}
			if err := tt.play(ind, context.Background()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pin.Outs(), tt.outs) {
				t.Errorf("levels %v, want %v", pin.Outs(), tt.outs)
			}
			if got := clock.Waits(); !reflect.DeepEqual(got, tt.waits) {
				t.Errorf("waits %v, want %v", got, tt.waits)
			}
		})
	}
}

func TestIndicatorCancelLeavesOff(t *testing.T) {
	pin := keypadtest.NewPin("BUZ", 0)
	// A clock whose After never fires: the pattern can only end by ctx.
	b := NewBuzzer(pin, IndicatorClock(stuckClock{}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Failure(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Failure = %v", err)
	}
	if l, _ := pin.Level(); l != L {
		t.Fatalf("buzzer left %s after cancel", l)
	}
	// Already cancelled: nothing switched on, still off.
	pin.ResetOuts()
	if err := b.Click(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Click = %v", err)
	}
	if !reflect.DeepEqual(pin.Outs(), []gpio.Level{L}) {
		t.Fatalf("levels %v, want only off", pin.Outs())
	}
}

type stuckClock struct{}

func (stuckClock) NewTicker(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }
func (stuckClock) After(time.Duration) <-chan time.Time               { return nil }

func TestIndicatorErrors(t *testing.T) {
	if err := NewLED(nil).Click(context.Background()); !errors.Is(err, ErrNoPin) {
		t.Fatalf("nil pin: %v", err)
	}
	l := NewLED(failPin{keypadtest.NewPin("LED", 0)}, IndicatorClock(keypadtest.NewClock(t0, period)))
	if err := l.Success(context.Background()); err == nil {
		t.Fatal("failing pin: no error")
	}
	if err := l.Off(); err == nil {
		t.Fatal("failing pin Off: no error")
	}
	p := keypadtest.NewPin("LED", 0)
	if err := NewLED(p, WithPatterns(Patterns{Click: Pattern{{true, 0}}})).Click(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Outs(), []gpio.Level{H, L}) {
		t.Fatalf("zero-length step: %v", p.Outs())
	}
}
