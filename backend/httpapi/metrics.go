package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lastseen/lastseen/backend/presence"
)

// Metrics is the service's Prometheus metrics, in a registry of its own (no
// global state: two servers in one test process do not collide).
type Metrics struct {
	reg *prometheus.Registry

	beats      *prometheus.CounterVec
	streams    prometheus.Gauge
	dropped    prometheus.Counter
	batchBeats prometheus.Histogram
	commit     prometheus.Histogram
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	devices    *deviceCollector
	capped     *prometheus.CounterVec
	authFailed *prometheus.CounterVec
	revoked    prometheus.Counter
}

// Caps, the values of lastseen_cap_rejections_total's "cap" label.
const (
	capUserStreams = "user_streams" // MaxStreamsPerUser
	capStreams     = "streams"      // MaxStreams
	capUserDevices = "user_devices" // MaxDevicesPerUser
	capConnections = "connections"  // LimitListener
)

// Beat outcomes, the values of lastseen_beats_total's "result" label.
const (
	beatAccepted  = "accepted"
	beatDuplicate = "duplicate"
	beatRejected  = "rejected"
)

// NewMetrics returns a fresh set of metrics with the Go runtime and process
// collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		beats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lastseen_beats_total",
			Help: "Beats received, by result: accepted (applied), duplicate (at or below the device's last seq), rejected (invalid).",
		}, []string{"result"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lastseen_sse_streams",
			Help: "Open Server-Sent Events streams.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lastseen_sse_dropped_total",
			Help: "Event streams ended because they fell too far behind.",
		}),
		batchBeats: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lastseen_writer_batch_beats",
			Help:    "Beats committed per write batch of the store's writer.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000},
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lastseen_writer_commit_seconds",
			Help:    "Commit latency of the store's write batches.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12), // 0.1 ms .. ~6 s
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lastseen_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lastseen_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern (event streams excluded).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		capped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lastseen_cap_rejections_total",
			Help: "Requests and connections refused for a cap: user_streams, streams, user_devices, connections, public_streams_per_addr.",
		}, []string{"cap"}),
		authFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lastseen_auth_failures_total",
			Help: "Failed authentications (a token offered and refused), by answer: unauthorized, or rate_limited once the client's address failed too often.",
		}, []string{"answer"}),
		revoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lastseen_sse_revoked_total",
			Help: "Event streams ended because their device was revoked.",
		}),
		devices: &deviceCollector{desc: prometheus.NewDesc(
			"lastseen_devices",
			"Devices by current status (computed at scrape).",
			[]string{"state"}, nil)},
	}
	for _, r := range []string{beatAccepted, beatDuplicate, beatRejected} {
		m.beats.WithLabelValues(r) // export zeros, so rate() works from the first scrape
	}
	for _, c := range []string{capUserStreams, capStreams, capUserDevices, capConnections, capPublicStreams} {
		m.capped.WithLabelValues(c)
	}
	for _, a := range []string{authUnauthorized, authLimited} {
		m.authFailed.WithLabelValues(a)
	}
	m.reg.MustRegister(
		m.beats, m.streams, m.dropped, m.batchBeats, m.commit, m.requests, m.latency, m.devices,
		m.capped, m.authFailed, m.revoked,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// ObserveBatch records one write batch of the store's writer. It is the
// store's presence.Options.Observe.
func (m *Metrics) ObserveBatch(beats int, commit time.Duration) {
	m.batchBeats.Observe(float64(beats))
	m.commit.Observe(commit.Seconds())
}

// Registry is the registry the metrics live in, for a composition root that
// wants to add its own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// handler serves the registry. A failing collector (the store closed during
// shutdown) costs only its own series, not the whole scrape.
func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
}

func (m *Metrics) countBeats(accepted, duplicates, rejected int) {
	m.beats.WithLabelValues(beatAccepted).Add(float64(accepted))
	m.beats.WithLabelValues(beatDuplicate).Add(float64(duplicates))
	m.beats.WithLabelValues(beatRejected).Add(float64(rejected))
}

// Answers to a failed authentication, the values of
// lastseen_auth_failures_total's "answer" label.
const (
	authUnauthorized = "unauthorized"
	authLimited      = "rate_limited"
)

func (m *Metrics) authFailure(limited bool) {
	a := authUnauthorized
	if limited {
		a = authLimited
	}
	m.authFailed.WithLabelValues(a).Inc()
}

func (m *Metrics) request(route string, status int, d time.Duration, stream bool) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	if !stream {
		m.latency.WithLabelValues(route).Observe(d.Seconds())
	}
}

// deviceCollector counts devices by status when Prometheus scrapes, from the
// store's in-memory presence, so the gauge is never stale.
type deviceCollector struct {
	desc *prometheus.Desc

	mu    sync.Mutex
	store presence.Store
}

func (c *deviceCollector) attach(s presence.Store) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.store = s
}

func (c *deviceCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *deviceCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	s := c.store
	c.mu.Unlock()
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	users, err := s.Presence(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	counts := make(map[presence.State]int, len(presence.States))
	for _, u := range users {
		for _, d := range u.Devices {
			counts[d.Status]++
		}
	}
	for _, st := range presence.States {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
}
