package keypad_test

import (
	"context"
	"fmt"
	"time"

	"github.com/posagent/posagent/drivers/keypad"
	"github.com/posagent/posagent/drivers/keypad/keypadtest"
	"periph.io/x/conn/v3/gpio"
)

// A 2×2 keypad on fake pins: "5" is held for three scans, which the 10 ms
// debounce at 5 ms scans accepts as one press. On a terminal the lookup is
// gpioreg.ByName, which keypad.OpenHost does for you.
func ExampleOpen() {
	wire := keypadtest.NewMatrix(2, 2) // rows drive, columns sense
	pins := map[string]gpio.PinIO{"R0": wire.Drive[0], "R1": wire.Drive[1], "C0": wire.Sense[0], "C1": wire.Sense[1]}
	clock := keypadtest.NewClock(time.Unix(0, 0), 5*time.Millisecond)

	kp, err := keypad.Open(keypad.Config{
		Rows:      []string{"R0", "R1"},
		Cols:      []string{"C0", "C1"},
		Keys:      [][]string{{"5", "ENTER"}, {"CANCEL", "CLEAR"}},
		ScanEvery: 5 * time.Millisecond,
		Debounce:  10 * time.Millisecond,
	}, func(name string) gpio.PinIO { return pins[name] }, keypad.WithClock(clock))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer kp.Close()

	wire.Set([2]int{0, 0}) // press "5"
	clock.Tick(3)
	key, err := kp.Key(context.Background())
	fmt.Println(key, err)
	// Output: 5 <nil>
}

// Play the key-click on a buzzer that sounds when its pin is Low.
func ExampleNewBuzzer() {
	pin := keypadtest.NewPin("BUZ", 0)
	clock := keypadtest.NewClock(time.Unix(0, 0), time.Millisecond)
	b := keypad.NewBuzzer(pin, keypad.ActiveLow(), keypad.IndicatorClock(clock))
	if err := b.Click(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(pin.Outs(), clock.Waits())
	// Output: [Low High] [15ms]
}
