// A Go rebuild of the service tinymon comes from, for `make bench-http`:
// net/http and client_golang, with the Go original's three request
// families (names, labels and default buckets as in tinymon's catalog)
// recorded around a /hello handler that answers tinymon's bytes.
//
// Built in GOPATH mode against Debian's golang-github-prometheus-client-
// golang-dev; benches/http.rs builds and runs it when `go` is installed.
// Usage: go_original 127.0.0.1:PORT
package main

import (
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var (
	requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "server_handle_request_total",
		Help: "HTTP requests received, counted when each request starts.",
	}, []string{"type", "method", "path"})
	statuses = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "server_handle_request_status",
		Help: "HTTP requests answered, by response status.",
	}, []string{"type", "method", "path", "status"})
	seconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "server_handle_request_seconds",
		Help:    "Time to handle an HTTP request, in seconds.",
		Buckets: prometheus.DefBuckets,
	}, []string{"type", "method", "path", "status"})
)

// instrument records the three families around next, as the original's
// middleware does.
func instrument(path string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		requests.WithLabelValues("http", r.Method, path).Inc()
		next(w, r)
		status := strconv.Itoa(http.StatusOK)
		statuses.WithLabelValues("http", r.Method, path, status).Inc()
		seconds.WithLabelValues("http", r.Method, path, status).Observe(time.Since(start).Seconds())
	}
}

func hello(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("hello from tinymon\n"))
}

func main() {
	prometheus.MustRegister(requests, statuses, seconds)
	http.HandleFunc("/hello", instrument("/hello", hello))
	http.Handle("/metrics", promhttp.Handler())
	if err := http.ListenAndServe(os.Args[1], nil); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}
