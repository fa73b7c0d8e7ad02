package httpapi

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastseen/lastseen/backend/apierror"
	"github.com/lastseen/lastseen/backend/presence"
)

// Refusing a connection over the limit: how long it may take, and how many
// refusals may be under way at once (each holds a descriptor meanwhile, so
// the headroom under the process's limit must cover them; past this many,
// connections are closed unanswered).
const (
	refuseTimeout  = 2 * time.Second
	maxRefusing    = 64
	refuseDrainMax = 64 << 10
)

// LimitListener returns a listener that keeps at most max connections open
// at once, so that the process never runs out of descriptors: a stream, an
// idle keep-alive connection and a request in flight each hold one until
// closed (a stream that took its connection over included).
//
// Unlike a listener that stops accepting, which leaves clients waiting in
// the kernel's backlog unable to tell a full server from a dead one, a
// connection over the limit is accepted, answered at once with 503, a
// Retry-After and the JSON error, and closed. With tlsConf (the server's)
// the answer follows a handshake. m, when not nil, counts the refusals.
func LimitListener(ln net.Listener, max int, tlsConf *tls.Config, m *Metrics) net.Listener {
	body := apierror.Encode(apierror.Detail{Code: presence.EUNAVAILABLE, Message: "the server has as many connections open as it allows; retry shortly"})
	answer := "HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: application/json; charset=utf-8\r\n" +
		"Cache-Control: no-store\r\n" +
		"Retry-After: 1\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)
	return &limitListener{
		Listener: ln,
		max:      int64(max),
		tls:      tlsConf,
		metrics:  m,
		answer:   []byte(answer),
		refusing: make(chan struct{}, maxRefusing),
	}
}

type limitListener struct {
	net.Listener
	max      int64
	tls      *tls.Config
	metrics  *Metrics
	answer   []byte
	open     atomic.Int64
	refusing chan struct{} // a semaphore of refusals under way
}

// Accept returns the next connection within the limit, refusing those over it.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		if l.metrics != nil {
			l.metrics.capped.WithLabelValues(capConnections).Inc()
		}
		select {
		case l.refusing <- struct{}{}:
			go func() {
				defer func() { <-l.refusing }()
				l.refuse(c)
			}()
		default:
			_ = c.Close() // already refusing as many as it may: no answer
		}
	}
}

// refuse answers c with 503 and closes it. It reads what the client sends
// until the client closes its end (or the deadline passes), as closing
// with a request unread would reset the connection and could lose the
// answer before the client reads it.
func (l *limitListener) refuse(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(refuseTimeout))
	var conn net.Conn = c
	if l.tls != nil {
		tc := tls.Server(c, l.tls)
		if err := tc.Handshake(); err != nil {
			return
		}
		conn = tc
	}
	// Wait for the request's head before answering: an answer that comes
	// before the client has sent anything reads, to an HTTP client, as an
	// unsolicited response on an idle connection, and it drops it.
	br := bufio.NewReaderSize(io.LimitReader(conn, refuseDrainMax), 1024)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return // gone, or silent past the deadline: no one to answer
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 && err == nil {
			break // the blank line that ends the head
		}
	}
	if _, err := conn.Write(l.answer); err != nil {
		return
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, br)
}

// limitedConn gives its place back when closed, once.
type limitedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// CloseWrite keeps net/http's graceful close of a TCP connection working
// through the wrapper.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
