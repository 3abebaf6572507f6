package provisioning

import "context"

// TMKState is where the terminal master key stands on a host link that can
// download it.
type TMKState string

// TMK states.
const (
	// TMKHeld: a TMK is held (injected, or downloaded and activated).
	TMKHeld TMKState = "held"
	// TMKMissing: none is held and none is on its way.
	TMKMissing TMKState = "missing"
	// TMKPending: a downloaded TMK matched its check value, but the host
	// has not acknowledged its activation; it is used for nothing yet.
	TMKPending TMKState = "pending"
)

// TMKSource is a Host that downloads the terminal master key itself (a
// remote TMK download) instead of having it injected. The flow asks it
// before every sign-on; a host link whose TMK is injected reports TMKHeld.
// Where the download stands lives in the source (its key store), not in
// the checkpoint: a power cut between the download and the activation
// resumes with the activation, and a TMK is never used before it.
type TMKSource interface {
	TMKState() TMKState
	// FetchTMK sends the terminal's public key and keeps the TMK of an
	// approved answer as pending when its check value matches (an error
	// with failure code E_TMK_CHECK when it does not: nothing kept).
	FetchTMK(ctx context.Context, r AdminRequest) (Ack, error)
	// ActivateTMK asks the host to activate the pending TMK; on 00 it is
	// the TMK, on any other code it is dropped.
	ActivateTMK(ctx context.Context, r AdminRequest) (Ack, error)
}

// ensureTMK downloads and activates the TMK when the host link can and none
// is held. Each message takes a STAN of the checkpoint's, saved before it
// goes; nothing else of the download is in the checkpoint.
func (f *Flow) ensureTMK(ctx context.Context, cp *Checkpoint) error {
	src, ok := f.Host.(TMKSource)
	if !ok {
		return nil
	}
	// At most: a fetch, then its activation.
	for range 2 {
		state := src.TMKState()
		if state == TMKHeld {
			return nil
		}
		stan := f.nextSTAN(cp)
		if err := f.save(cp); err != nil {
			return err
		}
		req := AdminRequest{Terminal: f.term(cp), STAN: stan}
		hctx, cancel := f.hostCtx(ctx, cp)
		var ack Ack
		var err error
		what := Text{"主密钥下载", "TMK download"}
		if state == TMKPending {
			what = Text{"主密钥激活", "TMK activation"}
			ack, err = src.ActivateTMK(hctx, req)
		} else {
			ack, err = src.FetchTMK(hctx, req)
		}
		cancel()
		if err != nil {
			code := codeOf(err, "E_TMK_DOWNLOAD")
			if code == "E_TMK_CHECK" || code == "E_NO_TMK" {
				return stepErr(code, err)
			}
			return stepErr(code, err, what)
		}
		if ack.RC != "00" {
			return stepErr("E_TMK_DECLINED", nil, what, ack.RC)
		}
		f.Log.Info("remote TMK", "step", what.EN, "stan", stan)
	}
	if src.TMKState() != TMKHeld {
		return stepErr("E_NO_TMK", nil)
	}
	return nil
}
