package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// healthInput holds healthcheck's own flags.
type healthInput struct {
	url     string
	timeout time.Duration
}

// healthcheckCommand is `lastseend healthcheck`: a container's HEALTHCHECK
// with nothing but this binary in the image (no shell, no curl).
var healthcheckCommand = command{
	name: "healthcheck", noStore: true,
	summary: "Ask a running serve for GET /healthz and exit 0 when it answers 200 (a container HEALTHCHECK " +
		"that needs no curl). Without --url it asks --addr (LASTSEEN_ADDR) on the loopback, over HTTPS when " +
		"LASTSEEN_TLS_CERT is set.",
	flags: func(m *Main, fs *flag.FlagSet) {
		fs.StringVar(&m.Config.Addr, "addr", m.Config.Addr, "the `address` serve listens on (host:port)")
		fs.StringVar(&m.health.url, "url", "", "the `URL` to ask instead, e.g. http://127.0.0.1:8080/healthz")
		fs.DurationVar(&m.health.timeout, "timeout", 5*time.Second, "give up after this `duration`")
	},
	check: func(m *Main, fs *flag.FlagSet, args []string) error {
		if m.health.url != "" {
			u, err := url.Parse(m.health.url)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("--url %q is not an http(s) URL", m.health.url)
			}
		}
		if m.health.timeout <= 0 {
			return errors.New("--timeout must be positive")
		}
		return nil
	},
	runFile: runHealthcheck,
}

// healthURL is where serve answers when it listens on addr: a wildcard
// address is asked on the loopback.
func healthURL(addr string, tls bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/healthz", nil
}

func runHealthcheck(ctx context.Context, m *Main, _ []string) error {
	target := m.health.url
	if target == "" {
		cert, _ := m.LookupEnv("LASTSEEN_TLS_CERT")
		u, err := healthURL(m.Config.Addr, cert != "")
		if err != nil {
			return err
		}
		target = u
	}
	ctx, cancel := context.WithTimeout(ctx, m.health.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	client := &http.Client{Transport: &http.Transport{
		// The probe asks its own server over the loopback, where the
		// certificate names the public host: it checks liveness, sends
		// nothing secret, and so does not verify the name.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // see above
	}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", target, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck %s: %s", target, resp.Status)
	}
	fmt.Fprintf(m.Stdout, "healthy: %s\n", target)
	return nil
}
