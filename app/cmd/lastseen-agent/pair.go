package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/agenthost"
	"github.com/lastseen/lastseen/backend/apierror"
	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/localapi"
	"github.com/lastseen/lastseen/backend/presence"
)

// The pair command connects this computer to a lastseend without copying a
// token by hand (RFC 8628): it shows a code, the person approves it in a
// browser where they are signed in, and the device token lands in the
// agent's database, owner-only, where --server and --token would put it.
//
//	lastseen-agent pair [--data-dir DIR] [--name NAME] URL
//
// With no agent running for the data dir, the command pairs itself and
// saves the service; the agent uses it from its next start. While an agent
// runs, the command does not write under it: it asks that agent to pair
// (POST /local/v1/pair, the window's way) and follows it, and the agent
// switches to the service at once.

const pairUsage = `usage: lastseen-agent pair [--data-dir DIR] [--name NAME] URL

Pairs this computer with the Lastseen service at URL: open the page it
prints, check the code and approve. The agent then sends presence there.
`

// pairFlags is the pair command's command line.
type pairFlags struct {
	DataDir string
	Name    string // what the service calls this computer
	URL     string
}

// parsePairFlags reads the pair command's arguments (those after "pair").
func parsePairFlags(args []string, getenv func(string) string, stderr io.Writer) (pairFlags, error) {
	var f pairFlags
	fs := flag.NewFlagSet("lastseen-agent pair", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, pairUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.DataDir, "data-dir", getenv("LASTSEEN_DATA_DIR"), "the agent's data directory (default: the OS's per-user config dir)")
	fs.StringVar(&f.Name, "name", agenthost.DeviceName(), "what the service calls this computer")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	// Flags may also follow the URL (`pair https://… --name desk`), as
	// people type them.
	var url string
	if fs.NArg() > 0 {
		url = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return f, err
		}
	}
	if url == "" || fs.NArg() != 0 {
		fs.Usage()
		return f, errors.New("pair needs the service's URL, and nothing else")
	}
	var err error
	if f.URL, err = agenthost.CheckServerURL(url); err != nil {
		return f, errors.New(presence.ErrorMessage(err))
	}
	if f.Name, err = presence.NormalizeDeviceName(f.Name); err != nil {
		return f, fmt.Errorf("--name: %s", presence.ErrorMessage(err))
	}
	if f.DataDir, err = resolveDataDir(f.DataDir); err != nil {
		return f, err
	}
	return f, nil
}

// resolveDataDir is the data dir as the agent resolves it (ParseFlags).
func resolveDataDir(dir string) (string, error) {
	if dir == "" {
		conf, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("find the config dir (pass --data-dir): %w", err)
		}
		dir = filepath.Join(conf, "lastseen")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	return abs, nil
}

// pairMain runs the pair command and returns its exit status: 0 paired,
// 1 not paired (denied, expired, cancelled, failed), 2 a wrong command line.
func pairMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, deps pairDeps) int {
	f, err := parsePairFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "lastseen-agent pair:", err)
		return 2
	}
	res, err := pairCommand(ctx, f, stdout, deps)
	if err != nil {
		fmt.Fprintln(stderr, "lastseen-agent pair:", pairFailure(f.URL, err))
		return 1
	}
	fmt.Fprintf(stdout, "Paired: this computer is %s of %s on %s\n", res.device, res.handle, f.URL)
	if res.viaAgent {
		fmt.Fprintln(stdout, "The running agent sends presence there now.")
	} else {
		fmt.Fprintln(stdout, "The agent sends presence there from its next start.")
	}
	return 0
}

// pairFailure says why the pairing did not happen, and what to do.
func pairFailure(url string, err error) string {
	switch {
	case errors.Is(err, agenthost.ErrPairingDenied):
		return "the pairing was denied at " + url + "; nothing was changed"
	case errors.Is(err, agenthost.ErrPairingExpired), errors.Is(err, agenthost.ErrPairingInvalidGrant):
		return "the code expired before it was approved; run `lastseen-agent pair " + url + "` again"
	case errors.Is(err, context.Canceled):
		return "cancelled; nothing was changed"
	}
	return err.Error()
}

// pairResult is who this computer is on the service now.
type pairResult struct {
	device, handle string
	viaAgent       bool // the running agent paired
}

// pairDeps are the pair command's seams for tests; zero values are the real ones.
type pairDeps struct {
	clock     agenthost.PairingClock // paces the polls of the service
	agentPoll time.Duration          // how often to ask a running agent (default 1 s)
}

// pairCommand pairs, by itself or through the agent running for the data
// dir, and shows the codes on stdout meanwhile.
func pairCommand(ctx context.Context, f pairFlags, stdout io.Writer, deps pairDeps) (pairResult, error) {
	if err := prepareDataDir(f.DataDir); err != nil {
		var loose errLooseDataDir
		if !errors.As(err, &loose) {
			return pairResult{}, err
		}
		// The database is owner-only all the same (agentdb sees to it).
	}
	lock, err := acquireLock(filepath.Join(f.DataDir, lockFile))
	if errors.Is(err, errAlreadyRunning) {
		return pairThroughAgent(ctx, f, stdout, deps)
	}
	if err != nil {
		return pairResult{}, err
	}
	// Held until the token is saved: an agent started meanwhile would
	// read the settings before they name the service.
	defer lock.release()
	db, err := agentdb.Open(filepath.Join(f.DataDir, agenthost.AgentDBFile), agentdb.Options{})
	if err != nil {
		return pairResult{}, fmt.Errorf("open the agent's database: %w", err)
	}
	defer db.Close()

	// A poll that hangs must not outlive the code: every request is bounded.
	svc := httpapi.NewClient(f.URL, "", &http.Client{Timeout: 30 * time.Second})
	paired, err := agenthost.Pair(ctx, svc, f.Name, agenthost.DeviceOS(), deps.clock, func(s httpapi.PairingStart) {
		showCodes(stdout, f.URL, s.UserCode, s.VerificationURI, s.VerificationURIComplete, s.ExpiresIn)
	})
	if err != nil {
		var ae *httpapi.APIError
		if errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusMethodNotAllowed) {
			return pairResult{}, fmt.Errorf("%s does not offer pairing: is it a Lastseen service, and a recent one?", f.URL)
		}
		return pairResult{}, err
	}
	// The code is spent: save even if Ctrl-C came meanwhile.
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := db.SetServer(saveCtx, f.URL, paired.Token); err != nil {
		return pairResult{}, fmt.Errorf("save the paired service: %w", err)
	}
	return pairResult{device: paired.Device.Name, handle: paired.Handle}, nil
}

// showCodes tells the person what to open and which code to expect.
func showCodes(w io.Writer, url, code, verify, complete string, expiresIn time.Duration) {
	fmt.Fprintf(w, "To pair this computer with %s, open this page in a browser where you are signed in:\n\n", url)
	if complete != "" {
		fmt.Fprintf(w, "    %s\n\nand check that it shows the code %s, then approve it.\n", complete, code)
		fmt.Fprintf(w, "(Or open %s and enter the code.)\n", verify)
	} else {
		fmt.Fprintf(w, "    %s\n\nand enter the code %s.\n", verify, code)
	}
	if expiresIn > 0 {
		fmt.Fprintf(w, "The code expires in %s. ", expiresIn.Round(time.Minute))
	}
	fmt.Fprintln(w, "Waiting for approval… (Ctrl-C cancels)")
}

// pairThroughAgent asks the agent running for the data dir to pair, and
// follows it until the pairing is decided. Ending ctx cancels it there.
func pairThroughAgent(ctx context.Context, f pairFlags, stdout io.Writer, deps pairDeps) (pairResult, error) {
	d, err := localapi.ReadDiscovery(f.DataDir)
	if err != nil {
		return pairResult{}, fmt.Errorf("an agent runs for %s but cannot be asked (%v): pair from the window's settings, or quit the agent and run this again", f.DataDir, err)
	}
	a := agentClient{d: d, hc: &http.Client{Timeout: 30 * time.Second}}
	var st localapi.PairStatus
	if err := a.do(ctx, http.MethodPost, localapi.PairRequest{URL: f.URL, Name: f.Name}, &st); err != nil {
		return pairResult{}, err
	}
	var left time.Duration
	if st.ExpiresAt != nil {
		left = time.Until(*st.ExpiresAt)
	}
	fmt.Fprintln(stdout, "The running agent is pairing.")
	showCodes(stdout, f.URL, st.UserCode, st.VerificationURI, st.VerificationURIComplete, left)
	every := deps.agentPoll
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for st.State == localapi.PairPending {
		select {
		case <-ctx.Done():
			// Stop the agent's wait too: the person gave up.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := a.do(cctx, http.MethodDelete, nil, nil); err != nil {
				fmt.Fprintln(stdout, "The agent's pairing could not be cancelled:", err)
			}
			return pairResult{}, ctx.Err()
		case <-t.C:
		}
		if err := a.do(ctx, http.MethodGet, nil, &st); err != nil && ctx.Err() == nil {
			return pairResult{}, fmt.Errorf("ask the agent how the pairing goes: %w", err)
		}
	}
	switch st.State {
	case localapi.PairApproved:
		r := pairResult{handle: st.Handle, viaAgent: true}
		if st.Device != nil {
			r.device = st.Device.Name
		}
		return r, nil
	case localapi.PairDenied:
		return pairResult{}, agenthost.ErrPairingDenied
	case localapi.PairExpired:
		return pairResult{}, agenthost.ErrPairingExpired
	case localapi.PairNone:
		return pairResult{}, errors.New("the pairing was cancelled at the agent (another pairing started, or the window cancelled it)")
	}
	return pairResult{}, fmt.Errorf("the agent could not pair: %s", st.Error)
}

// agentClient speaks to the running agent's local API about pairing.
type agentClient struct {
	d  localapi.Discovery
	hc *http.Client
}

func (a agentClient) do(ctx context.Context, method string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.d.URL+"/local/v1/pair", body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.d.Secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("reach the running agent: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read the agent's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New(apierror.Decode(resp.StatusCode, raw).Message)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}
